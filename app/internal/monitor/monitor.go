package monitor

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/taskflow-dev/taskflow/app/internal/broker"
	"github.com/taskflow-dev/taskflow/app/internal/store"
)

// Store is the part of the task store the monitor reads and changes.
type Store interface {
	Requeuer
	Task(ctx context.Context, id uuid.UUID) (store.Task, error)
	Attempts(ctx context.Context, id uuid.UUID) ([]store.Attempt, error)
	TaskEdges(ctx context.Context, id uuid.UUID) (parents, children []uuid.UUID, err error)
	SearchTasks(ctx context.Context, q store.TaskQuery) ([]store.Task, bool, error)
	CountTasks(ctx context.Context) ([]store.TaskCount, error)
	Throughput(ctx context.Context, minutes int) ([]store.MinuteStats, error)
	OldestWaiting(ctx context.Context) (time.Time, bool, error)
	Revoke(ctx context.Context, id uuid.UUID) (store.Task, error)
	SetQueuePaused(ctx context.Context, queue string, paused bool) error
	PausedQueues(ctx context.Context) ([]string, error)
	Ping(ctx context.Context) error
}

// Broker opens AMQP channels; *broker.Conn implements it.
type Broker interface {
	Channel() (*amqp.Channel, error)
	Check() error
}

// QueueReader reads queue figures; *Management implements it.
type QueueReader interface {
	Queues(ctx context.Context, keep func(name string) bool) ([]QueueStats, error)
}

// Commander sends operator commands to every worker. Delivery is best effort, because the
// state an action changes is already in PostgreSQL when the command goes out. *event.Commands
// implements it.
type Commander interface {
	Revoked(ctx context.Context, id uuid.UUID) error
	Paused(ctx context.Context, queue string, paused bool) error
}

// Deps are the collaborators of a Monitor.
type Deps struct {
	Store    Store
	Broker   Broker
	Queues   QueueReader
	Commands Commander
	// Log receives the monitor's log lines; nil discards them.
	Log *slog.Logger
	// Metrics are registered with Registerer and served from Gatherer at /metrics. When either is
	// nil, the monitor uses a registry of its own.
	Registerer prometheus.Registerer
	Gatherer   prometheus.Gatherer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Monitor is the dashboard: an http.Handler plus the background work of Run. Create it with New.
type Monitor struct {
	cfg      Config
	store    Store
	broker   Broker
	queues   QueueReader
	commands Commander
	log      *slog.Logger
	now      func() time.Time

	workers  *Registry
	hub      *hub
	pages    *pages
	metrics  *metrics
	handler  *router
	topology broker.Topology

	stopping  chan struct{} // closed when Run returns, to end the event streams
	stopOnce  sync.Once
	refreshMu sync.Mutex // serialises refreshes
	mu        sync.Mutex
	snapshot  *Snapshot // latest refresh, nil before the first
}

// New checks cfg and returns a Monitor. It fails when the configuration has no token and does
// not allow open read access.
func New(cfg Config, d Deps) (*Monitor, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Registerer == nil || d.Gatherer == nil {
		reg := prometheus.NewRegistry()
		d.Registerer, d.Gatherer = reg, reg
	}
	pg, err := newPages(cfg.base())
	if err != nil {
		return nil, err
	}
	m := &Monitor{
		cfg: cfg, store: d.Store, broker: d.Broker, queues: d.Queues, commands: d.Commands,
		log: d.Log, now: d.Now,
		workers:  NewRegistry(cfg.OfflineAfter, cfg.ForgetAfter, d.Now),
		hub:      newHub(cfg.MaxStreams),
		stopping: make(chan struct{}),
		pages:    pg,
		topology: broker.Topology{Queue: cfg.Queue},
	}
	m.metrics = newMetrics(m, d.Registerer)
	m.handler = m.routes(d.Gatherer)
	return m, nil
}

// Run consumes worker and task events, expires silent workers and refreshes the snapshot every
// RefreshInterval, until ctx ends. Broker and database failures are logged and retried, not
// returned; Run returns nil when ctx ends. When it returns, open event streams end, so an HTTP
// server shutdown does not wait for them.
func (m *Monitor) Run(ctx context.Context) error {
	defer m.stopOnce.Do(func() { close(m.stopping) })
	var wg sync.WaitGroup
	wg.Go(func() { m.consumeEvents(ctx) })
	wg.Go(func() { m.sweepWorkers(ctx) })
	wg.Go(func() { m.refreshLoop(ctx) })
	wg.Wait()
	return nil
}

// Workers returns the worker registry.
func (m *Monitor) Workers() *Registry { return m.workers }

// sweepWorkers expires silent workers once a second and broadcasts the worker list when it
// changed, and at least every few seconds so heartbeat ages stay current.
func (m *Monitor) sweepWorkers(ctx context.Context) {
	ticker := time.NewTicker(time.Second)
	defer ticker.Stop()
	var sent uint64
	var sentAt time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		m.workers.Sweep()
		if v := m.workers.Version(); v != sent || m.now().Sub(sentAt) >= 5*time.Second {
			m.broadcastWorkers()
			sent, sentAt = v, m.now()
		}
	}
}

// isTopologyQueue reports whether name belongs to the work queue's topology: the work queue, its
// dead-letter and poison queues and its delay queues.
func (m *Monitor) isTopologyQueue(name string) bool {
	return name == m.cfg.Queue || strings.HasPrefix(name, m.cfg.Queue+".")
}

// queueKind names the role of a topology queue: work, dead_letter, poison or delay.
func (m *Monitor) queueKind(name string) string {
	switch {
	case name == m.topology.Queue:
		return "work"
	case name == m.topology.DeadLetterQueue():
		return "dead_letter"
	case name == m.topology.PoisonQueue():
		return "poison"
	case strings.HasPrefix(name, m.topology.Queue+".delay."):
		return "delay"
	default:
		return "other"
	}
}

// isDeadLetterQueue reports whether name is the dead-letter or poison queue.
func (m *Monitor) isDeadLetterQueue(name string) bool {
	return name == m.topology.DeadLetterQueue() || name == m.topology.PoisonQueue()
}
