package monitor_test

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/taskflow-dev/taskflow/app/internal/broker"
	"github.com/taskflow-dev/taskflow/app/internal/monitor"
	"github.com/taskflow-dev/taskflow/app/internal/task"
	"github.com/taskflow-dev/taskflow/app/internal/testenv"
)

func TestWorkersGoOnlineAndOffline(t *testing.T) {
	t.Parallel()
	e := startEnv(t, 2)
	ctx := context.Background()

	eventually(t, 20*time.Second, "2 workers online", func() bool {
		online, _ := e.workers(t)
		return online == 2
	})

	e.stack.StopWorkers()
	eventually(t, 20*time.Second, "0 workers online after a drain", func() bool {
		online, statuses := e.workers(t)
		return online == 0 && statuses["w-1"] == monitor.StatusOffline && statuses["w-2"] == monitor.StatusOffline
	})

	if err := e.stack.StartWorkers(ctx, 3); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "3 workers online after scaling back", func() bool {
		online, _ := e.workers(t)
		return online == 3
	})
	online, statuses := e.workers(t)
	want := map[string]string{"w-1": "offline", "w-2": "offline", "w-3": "online", "w-4": "online", "w-5": "online"}
	if diff := cmp.Diff(want, statuses); diff != "" || online != 3 {
		t.Errorf("online = %d; statuses (-want +got):\n%s", online, diff)
	}

	metrics := mustCall(t, http.MethodGet, strings.TrimSuffix(e.URL, prefix)+"/metrics", "", "", http.StatusOK).body
	for _, line := range []string{"taskflow_monitor_workers_online 3", `taskflow_monitor_workers{status="offline"} 2`,
		`taskflow_monitor_worker_up{worker="w-1"} 0`, `taskflow_monitor_worker_up{worker="w-3"} 1`} {
		if !strings.Contains(metrics, line+"\n") {
			t.Errorf("metrics lack %q", line)
		}
	}
}

func TestRetryFailedTask(t *testing.T) {
	t.Parallel()
	e := startEnv(t, 1)
	e.failing.Store(true)
	id := e.submit(t, `{"task":"switch","args":{"label":"first"}}`)
	failed := e.waitState(t, id, 30*time.Second, task.Failure)
	if failed.Task.Error == nil || !strings.Contains(*failed.Task.Error, "switched off: first") {
		t.Errorf("error = %v, want the handler's error", failed.Task.Error)
	}

	// The failed task is listed, and its dead letter can be browsed any number of times.
	var list struct {
		Tasks []struct {
			ID string `json:"id"`
		} `json:"tasks"`
	}
	mustCall(t, http.MethodGet, e.URL+"/api/tasks?state=FAILURE&task=switch", readToken, "", http.StatusOK).decode(t, &list)
	if len(list.Tasks) != 1 || list.Tasks[0].ID != id {
		t.Errorf("FAILURE tasks = %+v, want just %s", list.Tasks, id)
	}
	eventually(t, 20*time.Second, "the dead letter", func() bool { return e.browse(t, "tasks.dlq").Total == 1 })
	for i := range 3 {
		d := e.browse(t, "tasks.dlq")
		if d.Total != 1 || len(d.Messages) != 1 {
			t.Fatalf("browse %d: total %d, %d messages; want 1 and 1", i, d.Total, len(d.Messages))
		}
		m := d.Messages[0]
		if m.TaskID != id || m.Reason != broker.ReasonRetriesExhausted || m.Attempts != 1 || m.State != task.Failure ||
			!strings.Contains(m.Error, "switched off") {
			t.Errorf("browse %d: dead letter = %+v", i, m)
		}
	}

	// A read-only token cannot retry; the admin token can.
	mustCall(t, http.MethodPost, e.URL+"/api/tasks/"+id+"/retry", readToken, "{}", http.StatusForbidden)
	e.failing.Store(false)
	mustCall(t, http.MethodPost, e.URL+"/api/tasks/"+id+"/retry", adminToken, "{}", http.StatusOK)
	done := e.waitState(t, id, 30*time.Second, task.Success)

	var states []task.State
	for _, a := range done.Attempts {
		states = append(states, a.State)
	}
	if diff := cmp.Diff([]task.State{task.Failure, task.Success}, states); diff != "" {
		t.Errorf("attempt states (-want +got):\n%s", diff)
	}
	var events []string
	for _, ev := range done.Timeline {
		events = append(events, ev.Event)
	}
	if diff := cmp.Diff([]string{"submitted", "started", "failed", "started", "succeeded"}, events); diff != "" {
		t.Errorf("timeline (-want +got):\n%s", diff)
	}

	// A task that succeeded cannot be retried.
	mustCall(t, http.MethodPost, e.URL+"/api/tasks/"+id+"/retry", adminToken, "{}", http.StatusConflict)
	// Its dead letter is a leftover; the page shows the task's new state next to it.
	if d := e.browse(t, "tasks.dlq"); len(d.Messages) != 1 || d.Messages[0].State != task.Success {
		t.Errorf("leftover dead letter = %+v, want one with state SUCCESS", d)
	}
}

func TestRetryResumesWorkflow(t *testing.T) {
	t.Parallel()
	e := startEnv(t, 1)
	e.failing.Store(true)
	var wf struct {
		Tasks []struct {
			ID string `json:"id"`
		} `json:"tasks"`
	}
	mustCall(t, http.MethodPost, e.stack.URL+"/api/workflows", "",
		`{"chain": [{"task": "switch", "args": {"label": "a"}}, {"task": "fib", "args": {"n": 5}}]}`,
		http.StatusAccepted).decode(t, &wf)
	first, second := wf.Tasks[0].ID, wf.Tasks[1].ID

	e.waitState(t, first, 30*time.Second, task.Failure)
	revoked := e.waitState(t, second, 10*time.Second, task.Revoked)
	if diff := cmp.Diff([]string{first}, revoked.WaitsFor); diff != "" {
		t.Errorf("second step waits_for (-want +got):\n%s", diff)
	}
	page := mustCall(t, http.MethodGet, e.URL+"/tasks/"+first, readToken, "", http.StatusOK)
	if !strings.Contains(string(page.body), `href="`+prefix+`/tasks/`+second+`"`) {
		t.Errorf("the first step's page does not link to the step that waits for it")
	}

	// A retry of the failed step brings the revoked one back, and the chain finishes.
	mustCall(t, http.MethodPost, e.URL+"/api/tasks/"+second+"/retry", adminToken, "{}", http.StatusConflict)
	e.failing.Store(false)
	mustCall(t, http.MethodPost, e.URL+"/api/tasks/"+first+"/retry", adminToken, "{}", http.StatusOK)
	e.waitState(t, second, 30*time.Second, task.Success)
}

func TestRequeueDeadLetters(t *testing.T) {
	t.Parallel()
	e := startEnv(t, 1)
	e.failing.Store(true)
	var ids []string
	for i := range 4 {
		ids = append(ids, e.submit(t, fmt.Sprintf(`{"task":"switch","args":{"label":"t%d"}}`, i)))
	}
	for _, id := range ids {
		e.waitState(t, id, 30*time.Second, task.Failure)
	}
	eventually(t, 20*time.Second, "4 dead letters", func() bool { return e.browse(t, "tasks.dlq").Total == 4 })
	e.failing.Store(false)

	// One task is retried from its page first, so its dead letter becomes a leftover.
	mustCall(t, http.MethodPost, e.URL+"/api/tasks/"+ids[0]+"/retry", adminToken, "{}", http.StatusOK)
	e.waitState(t, ids[0], 30*time.Second, task.Success)

	// Requeue one message by task id.
	var one struct {
		Results []monitor.RequeueResult `json:"results"`
	}
	mustCall(t, http.MethodPost, e.URL+"/api/queues/tasks.dlq/requeue", adminToken, `{"task_id":"`+ids[1]+`"}`, http.StatusOK).decode(t, &one)
	if diff := cmp.Diff([]monitor.RequeueResult{{TaskID: ids[1], Task: "switch", Outcome: monitor.RequeueDone}}, one.Results); diff != "" {
		t.Errorf("requeue one (-want +got):\n%s", diff)
	}
	e.waitState(t, ids[1], 30*time.Second, task.Success)
	mustCall(t, http.MethodPost, e.URL+"/api/queues/tasks.dlq/requeue", adminToken, `{"task_id":"`+ids[1]+`"}`, http.StatusNotFound)

	// Requeue the rest.
	var all struct {
		Counts map[string]int `json:"counts"`
	}
	mustCall(t, http.MethodPost, e.URL+"/api/queues/tasks.dlq/requeue", adminToken, `{"all":true}`, http.StatusOK).decode(t, &all)
	want := map[string]int{monitor.RequeueDone: 2, monitor.RequeueAlreadySucceeded: 1}
	if diff := cmp.Diff(want, all.Counts); diff != "" {
		t.Errorf("requeue all counts (-want +got):\n%s", diff)
	}
	for _, id := range ids {
		e.waitState(t, id, 30*time.Second, task.Success)
	}
	if d := e.browse(t, "tasks.dlq"); d.Total != 0 {
		t.Errorf("dead letters after requeue all = %d, want 0", d.Total)
	}

	// Bad requests name the problem.
	for _, c := range []struct {
		queue, body string
		status      int
	}{
		{"tasks.dlq", `{}`, http.StatusBadRequest},
		{"tasks.dlq", `{"all":true,"task_id":"` + ids[0] + `"}`, http.StatusBadRequest},
		{"tasks.dlq", `{"task_id":"nope"}`, http.StatusBadRequest},
		{"tasks.dlq", `{"everything":true}`, http.StatusBadRequest},
		{"tasks", `{"all":true}`, http.StatusBadRequest},
	} {
		mustCall(t, http.MethodPost, e.URL+"/api/queues/"+c.queue+"/requeue", adminToken, c.body, c.status)
	}
}

func TestRequeueKeepsUnknownTasks(t *testing.T) {
	t.Parallel()
	e := startEnv(t, 1)
	// A dead letter for a task that PostgreSQL does not know, and an unreadable one. The publish
	// is unroutable until the worker has declared the queues.
	for _, body := range []string{`{"id":"0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b","task":"fib"}`, "garbage"} {
		eventually(t, 20*time.Second, "a routable publish to tasks.poison", func() bool {
			return publishRaw(t, e.amqpURL, "tasks.poison", []byte(body)) == nil
		})
	}

	var all struct {
		Counts map[string]int `json:"counts"`
	}
	mustCall(t, http.MethodPost, e.URL+"/api/queues/tasks.poison/requeue", adminToken, `{"all":true}`, http.StatusOK).decode(t, &all)
	if diff := cmp.Diff(map[string]int{monitor.RequeueKept: 2}, all.Counts); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
	d := e.browse(t, "tasks.poison")
	if d.Total != 2 {
		t.Errorf("poison messages after requeue = %d, want 2 kept", d.Total)
	}
}

// publishRaw publishes body to queue and waits for the confirm. It returns the error of an
// unroutable or rejected message.
func publishRaw(t *testing.T, amqpURL, queue string, body []byte) error {
	t.Helper()
	conn := broker.NewConn(amqpURL, "test-publisher", slog.New(slog.DiscardHandler))
	pub := broker.NewPublisher(conn)
	defer func() { pub.Close(); _ = conn.Close() }()
	_, err := pub.Publish(context.Background(), broker.Message{Queue: queue, MessageID: "raw", Body: body})
	return err
}

func TestRevokePauseAndPurge(t *testing.T) {
	t.Parallel()
	e := startEnv(t, 1)

	// Revoke a running task.
	sleeping := e.submit(t, `{"task":"sleep","args":{"ms":20000}}`)
	e.waitState(t, sleeping, 30*time.Second, task.Started)
	mustCall(t, http.MethodPost, e.URL+"/api/tasks/"+sleeping+"/revoke", adminToken, "{}", http.StatusOK)
	e.waitState(t, sleeping, 5*time.Second, task.Revoked)
	mustCall(t, http.MethodPost, e.URL+"/api/tasks/"+sleeping+"/revoke", adminToken, "{}", http.StatusOK)

	// Pause: a new task waits, the queue and the worker's heartbeat show the pause.
	mustCall(t, http.MethodPost, e.URL+"/api/queues/tasks/pause", adminToken, "{}", http.StatusOK)
	waiting := e.submit(t, `{"task":"fib","args":{"n":10}}`)
	var queues struct {
		Queues []monitor.QueueInfo `json:"queues"`
	}
	eventually(t, 20*time.Second, "the paused queue without consumers", func() bool {
		mustCall(t, http.MethodGet, e.URL+"/api/queues", readToken, "", http.StatusOK).decode(t, &queues)
		i := slices.IndexFunc(queues.Queues, func(q monitor.QueueInfo) bool { return q.Name == "tasks" })
		return i >= 0 && queues.Queues[i].Paused && queues.Queues[i].Consumers == 0
	})
	eventually(t, 10*time.Second, "the worker to report the pause", func() bool {
		return slices.Contains(e.monitor.Workers().Workers()[0].Paused, "tasks")
	})
	var v taskView
	mustCall(t, http.MethodGet, e.URL+"/api/tasks/"+waiting, readToken, "", http.StatusOK).decode(t, &v)
	if v.Task.State != task.Pending {
		t.Fatalf("task submitted while paused = %s, want PENDING", v.Task.State)
	}

	// Only the work queue can be paused.
	mustCall(t, http.MethodPost, e.URL+"/api/queues/tasks.dlq/pause", adminToken, "{}", http.StatusBadRequest)

	// Purge removes the waiting message; the task stays PENDING in PostgreSQL.
	eventually(t, 20*time.Second, "the waiting message in the work queue", func() bool {
		mustCall(t, http.MethodGet, e.URL+"/api/queues", readToken, "", http.StatusOK).decode(t, &queues)
		i := slices.IndexFunc(queues.Queues, func(q monitor.QueueInfo) bool { return q.Name == "tasks" })
		return i >= 0 && queues.Queues[i].Messages == 1
	})
	var purged struct {
		Purged int `json:"purged"`
	}
	mustCall(t, http.MethodPost, e.URL+"/api/queues/tasks/purge", adminToken, "{}", http.StatusOK).decode(t, &purged)
	if purged.Purged != 1 {
		t.Errorf("purged = %d, want 1", purged.Purged)
	}
	mustCall(t, http.MethodPost, e.URL+"/api/queues/other/purge", adminToken, "{}", http.StatusNotFound)

	// Resume: a new task runs again.
	mustCall(t, http.MethodPost, e.URL+"/api/queues/tasks/resume", adminToken, "{}", http.StatusOK)
	after := e.submit(t, `{"task":"fib","args":{"n":10}}`)
	e.waitState(t, after, 30*time.Second, task.Success)
}

func TestTaskListFilters(t *testing.T) {
	t.Parallel()
	e := startEnv(t, 1)
	var ids []string
	for i := range 5 {
		ids = append(ids, e.submit(t, fmt.Sprintf(`{"task":"fib","args":{"n":%d}}`, 10+i)))
	}
	words := e.submit(t, `{"task":"wordstats","args":{"text":"Needle in a haystack"}}`)
	e.waitState(t, words, 30*time.Second, task.Success)
	for _, id := range ids {
		e.waitState(t, id, 30*time.Second, task.Success)
	}

	listIDs := func(query string) ([]string, string) {
		var list struct {
			Tasks []struct {
				ID string `json:"id"`
			} `json:"tasks"`
			Next string `json:"next"`
		}
		mustCall(t, http.MethodGet, e.URL+"/api/tasks?"+query, readToken, "", http.StatusOK).decode(t, &list)
		var out []string
		for _, tk := range list.Tasks {
			out = append(out, tk.ID)
		}
		return out, list.Next
	}

	page1, next := listIDs("task=fib&limit=3")
	page2, last := listIDs("task=fib&limit=3&after=" + next)
	if diff := cmp.Diff([]string{ids[4], ids[3], ids[2], ids[1], ids[0]}, append(page1, page2...)); diff != "" || last != "" {
		t.Errorf("pages (-want +got):\n%s\nlast cursor %q", diff, last)
	}
	if got, _ := listIDs("q=needle"); !slices.Equal(got, []string{words}) {
		t.Errorf("search for argument text = %v, want [%s]", got, words)
	}
	// The first 13 characters are the millisecond timestamp, which tasks can share, so the prefix
	// reaches into the random bits.
	if got, _ := listIDs("q=" + ids[2][:23]); !slices.Equal(got, []string{ids[2]}) {
		t.Errorf("search for an id prefix = %v, want [%s]", got, ids[2])
	}
	if got, _ := listIDs("state=pending,failure"); len(got) != 0 {
		t.Errorf("unfinished tasks = %v, want none", got)
	}
	future := time.Now().Add(time.Hour).UTC().Format("2006-01-02T15:04")
	if got, _ := listIDs("from=" + future); len(got) != 0 {
		t.Errorf("tasks submitted in the future = %v, want none", got)
	}

	for _, bad := range []string{"state=DONE", "limit=0", "limit=501", "after=x", "from=yesterday", "q=" + strings.Repeat("x", 201),
		"q=%00", "task=%ff%fe"} {
		r := call(t, http.MethodGet, e.URL+"/api/tasks?"+bad, readToken, "")
		if r.status != http.StatusBadRequest || !strings.Contains(r.body, `"field"`) {
			t.Errorf("GET api/tasks?%s = %d %s, want 400 naming the field", bad, r.status, r.body)
		}
	}
	mustCall(t, http.MethodGet, e.URL+"/api/tasks/not-a-uuid", readToken, "", http.StatusBadRequest)
	mustCall(t, http.MethodGet, e.URL+"/api/tasks/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", readToken, "", http.StatusNotFound)
}

func TestAccessControl(t *testing.T) {
	t.Parallel()
	e := startEnv(t, 0)
	root := strings.TrimSuffix(e.URL, prefix)
	cases := []struct {
		name, method, path, token string
		status                    int
	}{
		{"page without token", "GET", prefix + "/", "", 401},
		{"api without token", "GET", prefix + "/api/workers", "", 401},
		{"event stream without token", "GET", prefix + "/api/events", "", 401},
		{"page with read token", "GET", prefix + "/", readToken, 200},
		{"tasks page with admin token", "GET", prefix + "/tasks", adminToken, 200},
		{"queues page", "GET", prefix + "/queues", readToken, 200},
		{"action with read token", "POST", prefix + "/api/queues/tasks/pause", readToken, 403},
		{"action without token", "POST", prefix + "/api/queues/tasks/pause", "", 401},
		{"healthz is open", "GET", prefix + "/healthz", "", 200},
		{"readyz is open", "GET", prefix + "/readyz", "", 200},
		{"metrics at the root", "GET", "/metrics", "", 200},
		{"metrics under the prefix", "GET", prefix + "/metrics", "", 200},
		{"static asset", "GET", prefix + "/static/app.js", "", 200},
		{"unknown asset", "GET", prefix + "/static/nope.js", "", 404},
		{"prefix without slash redirects", "GET", prefix, "", 301},
		{"unknown api route", "GET", prefix + "/api/nope", readToken, 404},
		{"unknown page", "GET", prefix + "/nope", readToken, 404},
		{"outside the prefix", "GET", "/tasks", readToken, 404},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := call(t, c.method, root+c.path, c.token, "{}")
			if r.status != c.status {
				t.Fatalf("%s %s = %d, want %d: %.200s", c.method, c.path, r.status, c.status, r.body)
			}
			if c.status == 401 && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Basic ") {
				t.Errorf("WWW-Authenticate = %q, want a Basic challenge", r.header.Get("WWW-Authenticate"))
			}
		})
	}

	// Basic authentication with the token as the password works like a bearer token.
	req, err := http.NewRequest("GET", e.URL+"/api/workers", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("operator", readToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("basic auth = %d, want 200", resp.StatusCode)
	}
}

func TestOpenModeIsReadOnly(t *testing.T) {
	t.Parallel()
	_, root := startMonitor(t, testenv.Database(t), testenv.RabbitMQ(t),
		monitor.Config{AllowOpen: true}, slog.New(slog.DiscardHandler))
	mustCall(t, "GET", root+"/flower/api/workers", "", "", http.StatusOK)
	r := mustCall(t, "GET", root+"/flower/", "", "", http.StatusOK)
	if strings.Contains(r.body, `class="admin"`) {
		t.Error("the open overview page shows admin controls")
	}
	mustCall(t, "POST", root+"/flower/api/queues/tasks/pause", "", "{}", http.StatusUnauthorized)
}

func TestNewRejectsMissingTokens(t *testing.T) {
	t.Parallel()
	_, err := monitor.New(monitor.Config{}, monitor.Deps{})
	if err == nil || !strings.Contains(err.Error(), "MONITOR_ALLOW_OPEN") {
		t.Errorf("New without tokens = %v, want an error that names MONITOR_ALLOW_OPEN", err)
	}
}

func TestPagesAndEventStream(t *testing.T) {
	t.Parallel()
	e := startEnv(t, 1)
	id := e.submit(t, `{"task":"fib","args":{"n":30}}`)
	e.waitState(t, id, 30*time.Second, task.Success)
	eventually(t, 20*time.Second, "1 worker online", func() bool {
		online, _ := e.workers(t)
		return online == 1
	})
	// The queues page shows the last queue figures, which list the work queue only once the
	// management API reports it.
	eventually(t, 20*time.Second, "the work queue in the queue figures", func() bool {
		r := call(t, http.MethodGet, e.URL+"/api/queues", readToken, "")
		return r.status == http.StatusOK && strings.Contains(r.body, `"name":"tasks"`)
	})

	pages := []struct {
		path string
		want []string
	}{
		{"/", []string{`id="worker-count" class="count">1<`, "w-1", `<svg class="chart `, `src="/flower/static/app.js?v=`}},
		{"/tasks?state=SUCCESS", []string{id, "fib", `value="SUCCESS" checked`}},
		{"/tasks/" + id, []string{`data-task-id="` + id + `"`, "832040", "Timeline", "attempt 1", `data-terminal="true"`}},
		{"/queues", []string{"tasks.dlq", "tasks.poison", `data-queue="tasks"`}},
	}
	for _, p := range pages {
		r := mustCall(t, "GET", e.URL+p.path, adminToken, "", http.StatusOK)
		for _, s := range p.want {
			if !strings.Contains(r.body, s) {
				t.Errorf("page %s lacks %q", p.path, s)
			}
		}
		if csp := r.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
			t.Errorf("page %s Content-Security-Policy = %q", p.path, csp)
		}
	}

	// The stream starts with the remembered fragments and then carries task events.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", e.URL+"/api/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+readToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type = %q, want text/event-stream", ct)
	}
	seen := map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	submitted := false
	for sc.Scan() {
		if name, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
			seen[name] = true
		}
		if seen["workers"] && seen["queues"] && seen["stats"] && !submitted {
			e.submit(t, `{"task":"fib","args":{"n":5}}`)
			submitted = true
		}
		if seen["task"] {
			break
		}
	}
	if diff := cmp.Diff(map[string]bool{"workers": true, "queues": true, "stats": true, "task": true}, seen); diff != "" {
		t.Errorf("event types seen (-want +got):\n%s (scan error %v)", diff, sc.Err())
	}
}

func TestManagementQueues(t *testing.T) {
	t.Parallel()
	amqpURL := testenv.RabbitMQ(t)
	conn, err := amqp.Dial(amqpURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	topo := broker.Topology{Queue: "tasks", DeliveryLimit: 3, RetryDelays: []time.Duration{time.Second}}
	if err := topo.Declare(ch); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := ch.PublishWithContext(context.Background(), "", "tasks.dlq", false, false, amqp.Publishing{Body: []byte("x")}); err != nil {
			t.Fatal(err)
		}
	}

	mgmt, err := monitor.NewManagement(testenv.ManagementURL(t), amqpURL)
	if err != nil {
		t.Fatal(err)
	}
	var queues []monitor.QueueStats
	eventually(t, 30*time.Second, "the management API to count 2 dead letters", func() bool {
		queues, err = mgmt.Queues(context.Background(), func(name string) bool { return strings.HasPrefix(name, "tasks") })
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(queues, func(q monitor.QueueStats) bool { return q.Name == "tasks.dlq" })
		return i >= 0 && queues[i].Messages == 2
	})
	var names []string
	for _, q := range queues {
		names = append(names, q.Name)
		if q.Type != "quorum" {
			t.Errorf("queue %s type = %q, want quorum", q.Name, q.Type)
		}
	}
	if diff := cmp.Diff([]string{"tasks", "tasks.delay.1000ms", "tasks.dlq", "tasks.poison"}, names); diff != "" {
		t.Errorf("queue names (-want +got):\n%s", diff)
	}

	bad, err := monitor.NewManagement(strings.Replace(testenv.ManagementURL(t), "@", "x@", 1), amqpURL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bad.Queues(context.Background(), func(string) bool { return true }); err == nil ||
		!strings.Contains(err.Error(), "401") || strings.Contains(err.Error(), "@") {
		t.Errorf("wrong password: err = %v, want a 401 without credentials", err)
	}
}
