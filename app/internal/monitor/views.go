package monitor

import (
	"net/http"
	"net/url"
	"time"

	"github.com/google/uuid"

	"github.com/taskflow-dev/taskflow/app/internal/task"
)

// layoutData is the data of the layout template, common to every page.
type layoutData struct {
	Title string
	// Nav is the active navigation item: overview, tasks or queues.
	Nav   string
	Base  string
	Role  string
	Admin bool
	Now   time.Time
}

func (m *Monitor) layout(r *http.Request, title, nav string) layoutData {
	role := roleFrom(r.Context())
	return layoutData{Title: title, Nav: nav, Base: m.cfg.base(), Role: role.String(), Admin: role == roleAdmin, Now: m.now()}
}

// statsView is the data of the "stats" fragment.
type statsView struct {
	States        []StateCount
	OldestWaiting time.Duration
	Throughput    chart
	Latency       chart
	Minutes       int
	DatabaseError string
}

// queuesView is the data of the "queues" fragment.
type queuesView struct {
	Queues []QueueInfo
	Error  string
}

func (m *Monitor) statsView(s *Snapshot) statsView {
	return statsView{States: s.States, OldestWaiting: s.OldestWaiting, Throughput: throughputChart(s.Stats),
		Latency: latencyChart(s.Stats), Minutes: m.cfg.ChartMinutes, DatabaseError: s.DatabaseError}
}

// overviewPage handles GET {prefix}/: workers, queues, task counts and charts.
func (m *Monitor) overviewPage(w http.ResponseWriter, r *http.Request) error {
	s := m.currentSnapshot(r.Context())
	return m.pages.render(w, http.StatusOK, "overview", struct {
		layoutData
		Workers workerList
		Stats   statsView
		Queues  queuesView
	}{m.layout(r, "Overview", "overview"), m.workerList(), m.statsView(s), queuesView{s.Queues, s.QueuesError}})
}

// tasksPage handles GET {prefix}/tasks with the filters of api/tasks.
func (m *Monitor) tasksPage(w http.ResponseWriter, r *http.Request) error {
	f, err := parseTaskFilter(r)
	if err != nil {
		return err
	}
	list, err := m.searchTasks(r, f)
	if err != nil {
		return err
	}
	next := ""
	if list.Next != "" {
		q := url.Values{}
		for k, v := range f.Form {
			q[k] = v
		}
		q.Set("after", list.Next)
		next = m.cfg.base() + "/tasks?" + q.Encode()
	}
	selected := map[task.State]bool{}
	for _, st := range f.Query.States {
		selected[st] = true
	}
	return m.pages.render(w, http.StatusOK, "tasks", struct {
		layoutData
		Form      url.Values
		Selected  map[task.State]bool
		Names     []string
		Tasks     []taskJSON
		Next      string
		FirstPage bool
	}{m.layout(r, "Tasks", "tasks"), f.Form, selected, m.currentSnapshot(r.Context()).Names, list.Tasks, next,
		f.Query.Before == uuid.Nil})
}

// taskPage handles GET {prefix}/tasks/{id}.
func (m *Monitor) taskPage(w http.ResponseWriter, r *http.Request) error {
	l, err := m.loadTask(r)
	if err != nil {
		return err
	}
	t, now := l.task, m.now()
	return m.pages.render(w, http.StatusOK, "task", struct {
		layoutData
		Detail    taskDetail
		Gantt     chart
		Terminal  bool
		CanRetry  bool
		CanRevoke bool
	}{m.layout(r, "Task "+t.ID.String(), "tasks"), newTaskDetail(l, now), ganttChart(t, l.attempts, now),
		t.State.Terminal(), t.State == task.Failure || t.State == task.Revoked, !t.State.Terminal()})
}

// deadLetterSection is one browsed dead-letter queue on the queues page.
type deadLetterSection struct {
	Queue string
	Kind  string
	List  deadLetterList
	Error string
}

// queuesPage handles GET {prefix}/queues: every queue of the topology and the first messages of
// the dead-letter and poison queues.
func (m *Monitor) queuesPage(w http.ResponseWriter, r *http.Request) error {
	s := m.currentSnapshot(r.Context())
	var sections []deadLetterSection
	for _, q := range []string{m.topology.DeadLetterQueue(), m.topology.PoisonQueue()} {
		sec := deadLetterSection{Queue: q, Kind: m.queueKind(q)}
		list, err := m.browseDeadLetters(r, q, defaultBrowseLimit)
		if err != nil {
			m.log.WarnContext(r.Context(), "browse dead letters", "queue", q, "err", err)
			sec.Error = "cannot read the queue: it may not exist yet, or RabbitMQ is unreachable"
		}
		sec.List = list
		sections = append(sections, sec)
	}
	return m.pages.render(w, http.StatusOK, "queues", struct {
		layoutData
		Queues      queuesView
		DeadLetters []deadLetterSection
	}{m.layout(r, "Queues", "queues"), queuesView{s.Queues, s.QueuesError}, sections})
}

// writePageError renders an error page. A 401 carries a Basic challenge, so the browser prompts
// for credentials.
func (m *Monitor) writePageError(w http.ResponseWriter, r *http.Request, err error) {
	status, _, msg := m.classify(r, err)
	if status == 499 {
		return
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="taskflow monitor", charset="UTF-8"`)
		msg = "This monitor needs a token. Sign in with any user name and the read-only or admin token as the password."
	}
	data := struct {
		layoutData
		Status  int
		Message string
	}{m.layout(r, http.StatusText(status), ""), status, msg}
	if err := m.pages.render(w, status, "error", data); err != nil {
		m.log.ErrorContext(r.Context(), "render error page", "err", err)
	}
}

// broadcastWorkers renders the workers fragment and sends it to every open stream.
func (m *Monitor) broadcastWorkers() {
	html, err := m.pages.fragment("workers", m.workerList())
	if err != nil {
		m.log.Error("render workers fragment", "err", err)
		return
	}
	m.hub.publish(streamEvent{Name: "workers", Data: html}, true)
}

// broadcastSnapshot renders the queues and stats fragments and sends them to every open stream.
func (m *Monitor) broadcastSnapshot(s *Snapshot) {
	for _, f := range []struct {
		name string
		data any
	}{{"queues", queuesView{s.Queues, s.QueuesError}}, {"stats", m.statsView(s)}} {
		html, err := m.pages.fragment(f.name, f.data)
		if err != nil {
			m.log.Error("render fragment", "fragment", f.name, "err", err)
			continue
		}
		m.hub.publish(streamEvent{Name: f.name, Data: html}, true)
	}
}
