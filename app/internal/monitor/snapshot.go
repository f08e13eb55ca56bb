package monitor

import (
	"cmp"
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/taskflow-dev/taskflow/app/internal/store"
	"github.com/taskflow-dev/taskflow/app/internal/task"
)

// Snapshot is one reading of queues, task counts and charts. The overview page, the queues page,
// the live fragments and the metrics all show the latest Snapshot.
type Snapshot struct {
	At time.Time `json:"at"`
	// Queues are the work queue's topology queues: the work queue, the dead-letter and poison
	// queues, then the delay queues from the shortest delay. QueuesError is set instead when the
	// management API could not be read.
	Queues      []QueueInfo `json:"queues"`
	QueuesError string      `json:"queues_error,omitempty"`
	// States are the task counts by state in lifecycle order, Counts by name and state.
	States []StateCount        `json:"states"`
	Counts []store.TaskCount   `json:"-"`
	Names  []string            `json:"task_names"`
	Stats  []store.MinuteStats `json:"-"`
	// OldestWaiting is how long the longest-waiting due task has waited for a worker, zero when
	// none waits.
	OldestWaiting time.Duration `json:"-"`
	// DatabaseError is set when PostgreSQL could not be read; the task figures are then empty.
	DatabaseError string `json:"database_error,omitempty"`
}

// QueueInfo is a queue's figures with its role and whether an operator paused it.
type QueueInfo struct {
	QueueStats
	// Kind is work, dead_letter, poison or delay.
	Kind   string `json:"kind"`
	Paused bool   `json:"paused"`
}

// StateCount is the number of tasks in one state.
type StateCount struct {
	State task.State `json:"state"`
	Count int64      `json:"count"`
}

// refreshTimeout bounds the reads of one refresh.
const refreshTimeout = 10 * time.Second

// refreshLoop refreshes the snapshot every RefreshInterval until ctx ends.
func (m *Monitor) refreshLoop(ctx context.Context) {
	ticker := time.NewTicker(m.cfg.RefreshInterval)
	defer ticker.Stop()
	for {
		m.refresh(ctx, true)
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// currentSnapshot returns the latest snapshot, refreshing it first when it is older than the
// refresh interval, which happens before Run's first refresh and when Run is not running.
func (m *Monitor) currentSnapshot(ctx context.Context) *Snapshot {
	m.mu.Lock()
	s := m.snapshot
	m.mu.Unlock()
	if s != nil && m.now().Sub(s.At) < m.cfg.RefreshInterval {
		return s
	}
	return m.refresh(ctx, false)
}

// refresh reads a new snapshot, stores it and broadcasts the queue and statistics fragments.
// Unless force is set, a snapshot younger than a second is returned as it is, so concurrent page
// loads share one reading.
func (m *Monitor) refresh(ctx context.Context, force bool) *Snapshot {
	m.refreshMu.Lock()
	defer m.refreshMu.Unlock()
	m.mu.Lock()
	if s := m.snapshot; !force && s != nil && m.now().Sub(s.At) < time.Second {
		m.mu.Unlock()
		return s
	}
	m.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, refreshTimeout)
	defer cancel()
	s := m.read(ctx)

	m.mu.Lock()
	m.snapshot = s
	m.mu.Unlock()
	m.broadcastSnapshot(s)
	return s
}

// sortQueues orders queues for display: the work queue, the dead-letter and poison queues, then
// the delay queues from the shortest delay.
func sortQueues(queues []QueueInfo) {
	slices.SortStableFunc(queues, func(a, b QueueInfo) int {
		return cmp.Or(cmp.Compare(kindOrder(a.Kind), kindOrder(b.Kind)),
			cmp.Compare(delayMillis(a.Name), delayMillis(b.Name)), strings.Compare(a.Name, b.Name))
	})
}

// kindOrder ranks queue roles for display: the work queue first, delay queues last.
func kindOrder(kind string) int {
	return slices.Index([]string{"work", "dead_letter", "poison", "other", "delay"}, kind)
}

// delayMillis returns the delay of a queue named like "tasks.delay.1500ms", or 0.
func delayMillis(name string) int {
	_, suffix, ok := strings.Cut(name, ".delay.")
	if !ok {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSuffix(suffix, "ms"))
	return n
}

// read builds a snapshot. Failures are recorded in the snapshot and logged, not returned, so a
// broken management API still leaves the task figures visible and the other way round.
func (m *Monitor) read(ctx context.Context) *Snapshot {
	s := &Snapshot{At: m.now(), Queues: []QueueInfo{}, States: []StateCount{}, Names: []string{}}

	paused, pausedErr := m.store.PausedQueues(ctx)
	queues, err := m.queues.Queues(ctx, m.isTopologyQueue)
	if err != nil {
		s.QueuesError = "cannot read queues from the RabbitMQ management API"
		m.metrics.refreshErrors.WithLabelValues("rabbitmq").Inc()
		m.log.WarnContext(ctx, "refresh: read queues", "err", err)
	}
	for _, q := range queues {
		s.Queues = append(s.Queues, QueueInfo{QueueStats: q, Kind: m.queueKind(q.Name), Paused: slices.Contains(paused, q.Name)})
	}
	sortQueues(s.Queues)

	counts, countErr := m.store.CountTasks(ctx)
	stats, statsErr := m.store.Throughput(ctx, m.cfg.ChartMinutes)
	since, waiting, oldestErr := m.store.OldestWaiting(ctx)
	if err := firstError(pausedErr, countErr, statsErr, oldestErr); err != nil {
		s.DatabaseError = "cannot read tasks from PostgreSQL"
		m.metrics.refreshErrors.WithLabelValues("postgres").Inc()
		m.log.WarnContext(ctx, "refresh: read tasks", "err", err)
	}
	s.Counts, s.Stats = counts, stats
	s.States, s.Names = summarize(counts)
	if waiting {
		s.OldestWaiting = max(s.At.Sub(since), 0)
	}
	return s
}

// summarize returns the counts by state in lifecycle order (every state, zeros included) and the
// sorted task names.
func summarize(counts []store.TaskCount) ([]StateCount, []string) {
	byState := map[task.State]int64{}
	var names []string
	for _, c := range counts {
		byState[c.State] += c.Count
		if !slices.Contains(names, c.Name) {
			names = append(names, c.Name)
		}
	}
	states := make([]StateCount, 0, len(task.States()))
	for _, st := range task.States() {
		states = append(states, StateCount{State: st, Count: byState[st]})
	}
	slices.Sort(names)
	if names == nil {
		names = []string{}
	}
	return states, names
}

func firstError(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
