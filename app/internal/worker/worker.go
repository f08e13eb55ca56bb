// Package worker consumes task messages from RabbitMQ and runs them with bounded concurrency.
//
// For each delivery the worker moves the task to STARTED in PostgreSQL, runs the handler under the
// task's deadline, commits the outcome and only then acknowledges the message. A retry is a new
// message in a delay queue, published with a confirm before the ack. Because the outcome is a
// conditional update, a redelivered message of a finished task is acknowledged without running.
//
// Concurrency is bounded by a semaphore of Concurrency slots that spans channel reconnects, and the
// channel's prefetch is set to Prefetch (by default equal to Concurrency), so RabbitMQ never pushes
// more than the worker can hold.
package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/taskflow-dev/taskflow/app/internal/backoff"
	"github.com/taskflow-dev/taskflow/app/internal/batch"
	"github.com/taskflow-dev/taskflow/app/internal/broker"
	"github.com/taskflow-dev/taskflow/app/internal/event"
	"github.com/taskflow-dev/taskflow/app/internal/store"
)

// Store is the part of the task store the worker uses.
type Store interface {
	LoadClaims(ctx context.Context, ids []uuid.UUID) []store.Started
	MarkStarted(ctx context.Context, marks []store.StartMark, worker string) []error
	FinishMany(ctx context.Context, outcomes []store.Outcome) []store.Finished
	FailUndelivered(ctx context.Context, id uuid.UUID, reason string) error
	PausedQueues(ctx context.Context) ([]string, error)
}

// Runner runs a task handler by name. Run must recover handler panics and return them as errors.
type Runner interface {
	Run(ctx context.Context, name string, args json.RawMessage) (json.RawMessage, error)
}

// Publisher sends messages with publisher confirms.
type Publisher interface {
	Publish(ctx context.Context, msgs ...broker.Message) ([]bool, error)
}

// Config holds the worker settings. Zero fields take the defaults of WithDefaults.
type Config struct {
	// Name identifies this worker in attempts, logs and the broker's consumer tag. Default "worker".
	Name string
	// Queue is the work queue. Default "tasks".
	Queue string
	// Concurrency is the number of tasks run at once. Default 8.
	Concurrency int
	// Prefetch is the most unacknowledged messages RabbitMQ sends this worker. Default Concurrency;
	// a larger value lets messages wait in the worker for a free slot.
	Prefetch int
	// DrainTimeout is how long Run waits for running tasks after its context ends before it
	// cancels them; cancelled tasks are requeued. Default 25s.
	DrainTimeout time.Duration
	// Retry is the backoff between attempts of a failing task. Default 1s doubling to 5m.
	Retry backoff.Policy
	// DeliveryLimit is the number of redeliveries after which a message is treated as poison: a
	// worker crashed or was cut off each time. It must match the x-delivery-limit of an existing
	// work queue. Default 10.
	DeliveryLimit int
	// Reconnect spaces attempts to reach RabbitMQ or PostgreSQL. Default 200ms doubling to 15s.
	Reconnect backoff.Policy
	// HeartbeatInterval is the period of the worker.heartbeat event. Default 5s.
	HeartbeatInterval time.Duration
	// StartedAfter is how long an attempt runs before the worker marks its task STARTED in
	// PostgreSQL. Shorter attempts go straight to their outcome, which saves a write per task. A
	// redelivered message is marked at once, so a crash loop stays visible. Default 50ms; a
	// negative value marks every attempt at once.
	StartedAfter time.Duration
}

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.Name == "" {
		c.Name = "worker"
	}
	if c.Queue == "" {
		c.Queue = "tasks"
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 8
	}
	if c.Prefetch < c.Concurrency {
		c.Prefetch = c.Concurrency
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 25 * time.Second
	}
	if c.Retry.Base <= 0 {
		c.Retry.Base = time.Second
	}
	if c.Retry.Max < c.Retry.Base {
		c.Retry.Max = max(5*time.Minute, c.Retry.Base)
	}
	if c.DeliveryLimit <= 0 {
		c.DeliveryLimit = 10
	}
	if c.Reconnect.Base <= 0 {
		c.Reconnect = backoff.Policy{Base: 200 * time.Millisecond, Max: 15 * time.Second}
	}
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = 5 * time.Second
	}
	if c.StartedAfter == 0 {
		c.StartedAfter = 50 * time.Millisecond
	}
	return c
}

// Topology returns the broker topology this configuration declares.
func (c Config) Topology() broker.Topology {
	c = c.WithDefaults()
	return broker.Topology{
		Queue:         c.Queue,
		DeliveryLimit: c.DeliveryLimit,
		// Equal jitter never waits less than half the base delay.
		RetryDelays: broker.RetryDelays(c.Retry.Base/2, c.Retry.Max),
	}
}

// cancelGrace is how long a drain waits for cancelled tasks to return.
const cancelGrace = 5 * time.Second

// Worker consumes and runs tasks. Create it with New and call Run once.
type Worker struct {
	cfg      Config
	topology broker.Topology
	conn     *broker.Conn
	pub      Publisher
	store    Store
	runner   Runner
	log      *slog.Logger
	metrics  *metrics
	events   *event.Emitter
	hostname string

	slots     chan struct{} // one token per running task
	inFlight  sync.WaitGroup
	consuming atomic.Bool

	// paused is set while an operator has paused the queue; pauseChanged wakes the consumer.
	paused       atomic.Bool
	pauseChanged chan struct{}

	// loads, marks and finishes group the database work of concurrent slots into shared
	// statements.
	loads    *batch.Batcher[uuid.UUID, store.Claim]
	marks    *batch.Batcher[store.StartMark, struct{}]
	finishes *batch.Batcher[store.Outcome, bool]

	running   sync.Map // uuid.UUID -> *runningTask, for revocation
	active    atomic.Int64
	processed atomic.Int64
	failed    atomic.Int64
}

// runningTask is an attempt in progress that a revoke command can cancel.
type runningTask struct {
	cancel  context.CancelFunc
	revoked atomic.Bool
}

// New returns a Worker. It does not connect until Run.
func New(cfg Config, conn *broker.Conn, pub Publisher, st Store, runner Runner, log *slog.Logger, reg prometheus.Registerer) *Worker {
	cfg = cfg.WithDefaults()
	log = log.With("worker", cfg.Name)
	hostname, _ := os.Hostname()
	w := &Worker{
		cfg:          cfg,
		topology:     cfg.Topology(),
		conn:         conn,
		pub:          pub,
		store:        st,
		runner:       runner,
		log:          log,
		metrics:      newMetrics(reg, cfg.Concurrency),
		events:       event.NewEmitter(conn, log),
		hostname:     hostname,
		slots:        make(chan struct{}, cfg.Concurrency),
		pauseChanged: make(chan struct{}, 1),
	}
	w.loads = batch.New(func(ctx context.Context, ids []uuid.UUID) []batch.Result[store.Claim] {
		loaded := st.LoadClaims(ctx, ids)
		results := make([]batch.Result[store.Claim], len(loaded))
		for i, r := range loaded {
			results[i] = batch.Result[store.Claim]{Value: r.Claim, Err: r.Err}
		}
		return results
	}, cfg.Concurrency, writeFlushes, writeTimeout)
	w.marks = batch.New(func(ctx context.Context, marks []store.StartMark) []batch.Result[struct{}] {
		errs := st.MarkStarted(ctx, marks, cfg.Name)
		results := make([]batch.Result[struct{}], len(errs))
		for i, err := range errs {
			results[i].Err = err
		}
		return results
	}, cfg.Concurrency, writeFlushes, writeTimeout)
	w.finishes = batch.New(func(ctx context.Context, outcomes []store.Outcome) []batch.Result[bool] {
		finished := st.FinishMany(ctx, outcomes)
		results := make([]batch.Result[bool], len(finished))
		for i, r := range finished {
			results[i] = batch.Result[bool]{Value: r.Applied, Err: r.Err}
		}
		return results
	}, cfg.Concurrency, writeFlushes, writeTimeout)
	return w
}

// Batched database writes: at most writeFlushes statements of each kind in flight, each with
// writeTimeout.
const (
	writeFlushes = 1
	writeTimeout = 30 * time.Second
)

// Consuming reports whether the worker has an open consumer or is deliberately paused, for
// readiness probes.
func (w *Worker) Consuming() bool {
	return w.consuming.Load()
}

// Run consumes until ctx ends, then drains: it stops taking messages, waits up to DrainTimeout
// for running tasks, cancels those still running and returns their messages to the queue. It
// returns nil after a clean drain. Connection and channel failures are retried, not returned.
func (w *Worker) Run(ctx context.Context) error {
	// Tasks run under hardCtx, which ends DrainTimeout after ctx, so a drain can finish them.
	hardCtx, hardCancel := context.WithCancel(context.WithoutCancel(ctx))
	defer hardCancel()
	stopHard := context.AfterFunc(ctx, func() { time.AfterFunc(w.cfg.DrainTimeout, hardCancel) })
	defer stopHard()

	// Events and operator commands run beside the consumer.
	go w.events.Run()
	defer w.events.Close()
	w.emitWorker(event.WorkerOnline)
	var side sync.WaitGroup
	side.Go(func() { w.heartbeat(ctx) })
	side.Go(func() { w.control(hardCtx) })
	defer side.Wait()
	defer hardCancel() // stops the control loop once the drain is over

	w.log.InfoContext(ctx, "worker starting", "queue", w.cfg.Queue, "concurrency", w.cfg.Concurrency,
		"prefetch", w.cfg.Prefetch, "delivery_limit", w.cfg.DeliveryLimit,
		"retry_delays", len(w.topology.RetryDelays))
	reconnect := backoff.Retrier{Policy: w.cfg.Reconnect}
	for ctx.Err() == nil {
		err := w.consume(ctx, hardCtx)
		if ctx.Err() != nil {
			break
		}
		w.log.WarnContext(ctx, "consumer stopped; reconnecting", "err", err, "failures", reconnect.Failures()+1)
		_ = reconnect.Wait(ctx)
	}

	w.drain(ctx, hardCtx)
	w.emitWorker(event.WorkerOffline)
	return nil
}

// drain waits for the running tasks until hardCtx ends, then briefly for the cancelled ones.
func (w *Worker) drain(ctx, hardCtx context.Context) {
	w.log.InfoContext(ctx, "worker draining", "drain_timeout", w.cfg.DrainTimeout.String())
	drained := make(chan struct{})
	go func() {
		w.inFlight.Wait()
		close(drained)
	}()
	select {
	case <-drained:
		w.log.InfoContext(ctx, "worker drained")
		return
	case <-hardCtx.Done():
		w.log.WarnContext(ctx, "drain timeout reached; cancelled the running tasks, which return to the queue")
	}
	// A handler that ignores cancellation cannot be stopped; its message returns to the queue
	// when the connection closes.
	select {
	case <-drained:
	case <-time.After(cancelGrace):
		w.log.ErrorContext(ctx, "tasks ignored cancellation; exiting without them", "grace", cancelGrace.String())
	}
}

// consume runs one channel until it closes or ctx ends. While the queue is paused it keeps the
// channel but no consumer. On ctx end it waits for the channel's running tasks before closing it,
// so their acks can still be sent.
func (w *Worker) consume(ctx, hardCtx context.Context) error {
	ch, err := w.conn.Channel()
	if err != nil {
		return err
	}
	defer ch.Close()
	topology := w.topology
	topology.ServerMajor = w.conn.ServerMajor()
	if err := topology.Declare(ch); err != nil {
		return err
	}
	if err := ch.Qos(w.cfg.Prefetch, 0, false); err != nil {
		return fmt.Errorf("set prefetch: %w", err)
	}
	closed := ch.NotifyClose(make(chan *amqp.Error, 1))
	w.consuming.Store(true)
	defer w.consuming.Store(false)

	// On shutdown the running tasks of this channel finish before it closes, so their acks go out.
	// After a channel failure they are not waited for: they finish on their own, their acks fail,
	// and the redelivered copies are acknowledged by whoever receives them.
	var running sync.WaitGroup
	for {
		if w.paused.Load() {
			w.log.InfoContext(ctx, "queue paused; not consuming", "queue", w.cfg.Queue)
			select {
			case <-w.pauseChanged:
				continue
			case <-ctx.Done():
				running.Wait()
				return nil
			case err := <-closed:
				return channelClosed(err)
			}
		}
		tag := fmt.Sprintf("%s-%s", w.cfg.Name, uuid.NewString()[:8])
		deliveries, err := ch.Consume(w.cfg.Queue, tag, false, false, false, false, nil)
		if err != nil {
			return fmt.Errorf("consume %q: %w", w.cfg.Queue, err)
		}
		w.log.InfoContext(ctx, "consuming", "queue", w.cfg.Queue, "consumer_tag", tag)
		if err := w.dispatch(ctx, hardCtx, deliveries, closed, &running); err != nil {
			return err
		}
		w.stopConsumer(ch, tag, deliveries)
		if ctx.Err() != nil {
			running.Wait()
			return nil
		}
		// Paused: loop to wait for the resume.
	}
}

// dispatch hands deliveries to task slots. It returns nil when ctx ends or the queue is paused,
// and an error when the channel or the consumer is gone.
func (w *Worker) dispatch(ctx, hardCtx context.Context, deliveries <-chan amqp.Delivery, closed chan *amqp.Error,
	running *sync.WaitGroup) error {
	for {
		// Take a slot before taking a message, so a message waits in the prefetch buffer, not in
		// a goroutine.
		select {
		case w.slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		case <-w.pauseChanged:
			if w.paused.Load() {
				return nil
			}
			continue
		case err := <-closed:
			return channelClosed(err)
		}
		select {
		case d, ok := <-deliveries:
			if !ok {
				<-w.slots
				select {
				case err := <-closed:
					return channelClosed(err)
				default:
					// RabbitMQ cancelled the consumer, for example because the queue was deleted;
					// the next round declares the queue again.
					return errors.New("consumer cancelled by the broker")
				}
			}
			running.Add(1)
			w.inFlight.Add(1)
			go func() {
				defer func() {
					<-w.slots
					running.Done()
					w.inFlight.Done()
				}()
				w.handle(hardCtx, d)
			}()
		case <-ctx.Done():
			<-w.slots
			return nil
		case <-w.pauseChanged:
			<-w.slots
			if w.paused.Load() {
				return nil
			}
		case err := <-closed:
			<-w.slots
			return channelClosed(err)
		}
	}
}

// stopConsumer cancels the consumer and requeues the messages RabbitMQ already sent but no slot
// took.
func (w *Worker) stopConsumer(ch *amqp.Channel, tag string, deliveries <-chan amqp.Delivery) {
	if err := ch.Cancel(tag, false); err != nil {
		return // the channel is gone and the broker requeues everything itself
	}
	// After basic.cancel-ok amqp091-go closes deliveries; messages still buffered are requeued.
	timeout := time.After(5 * time.Second)
	for {
		select {
		case d, ok := <-deliveries:
			if !ok {
				return
			}
			_ = d.Nack(false, true)
		case <-timeout:
			return
		}
	}
}

func channelClosed(err *amqp.Error) error {
	if err == nil {
		return errors.New("channel closed")
	}
	return fmt.Errorf("channel closed: %w", err)
}
