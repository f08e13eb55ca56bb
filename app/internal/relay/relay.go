// Package relay moves committed outbox messages from PostgreSQL to RabbitMQ. The api writes a
// task and its outbox row in one transaction and answers 202 at once; the relay publishes the row
// with publisher confirms and deletes it only after the broker confirmed. While RabbitMQ is down
// the rows wait, and the relay publishes them when it is back.
package relay

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/taskflow-dev/taskflow/app/internal/backoff"
	"github.com/taskflow-dev/taskflow/app/internal/broker"
	"github.com/taskflow-dev/taskflow/app/internal/store"
)

// Outbox is the part of the store the relay uses.
type Outbox interface {
	RelayOutbox(ctx context.Context, limit int, publish store.PublishFunc) (int, error)
	NextOutboxDue(ctx context.Context) (time.Time, bool, error)
}

// Listener is implemented by an Outbox that can report rows committed by other processes, such
// as the tasks a worker's result released. The relay then publishes them at once instead of at
// its next poll.
type Listener interface {
	// ListenOutbox calls notify after each commit that wrote outbox rows, until ctx ends or the
	// connection fails.
	ListenOutbox(ctx context.Context, notify func()) error
}

// Publisher sends messages and reports which ones the broker confirmed.
type Publisher interface {
	Publish(ctx context.Context, msgs ...broker.Message) ([]bool, error)
}

// Config tunes a Relay.
type Config struct {
	// BatchSize is the most outbox rows published per transaction; a row holds the tasks of one
	// insert statement. Default 100.
	BatchSize int
	// PollInterval is how often the relay looks for rows written by other processes or that just
	// became due. Default 1s. Rows written through this process are picked up at once via Notify.
	PollInterval time.Duration
	// Retry spaces attempts after a failure. Default 100ms doubling to 10s.
	Retry backoff.Policy
}

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.BatchSize <= 0 {
		c.BatchSize = 100
	}
	if c.PollInterval <= 0 {
		c.PollInterval = time.Second
	}
	if c.Retry.Base <= 0 {
		c.Retry = backoff.Policy{Base: 100 * time.Millisecond, Max: 10 * time.Second}
	}
	return c
}

// Relay publishes the outbox. Run it in one goroutine; Notify may be called from any goroutine.
type Relay struct {
	cfg    Config
	outbox Outbox
	pub    Publisher
	log    *slog.Logger
	wake   chan struct{}

	published prometheus.Counter
	failures  prometheus.Counter
}

// New returns a Relay. Its metrics are registered with reg.
func New(cfg Config, outbox Outbox, pub Publisher, log *slog.Logger, reg prometheus.Registerer) *Relay {
	r := &Relay{
		cfg:    cfg.WithDefaults(),
		outbox: outbox,
		pub:    pub,
		log:    log,
		wake:   make(chan struct{}, 1),
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "taskflow_outbox_rows_published_total",
			Help: "Outbox rows whose task messages RabbitMQ confirmed; a row holds the tasks of one insert.",
		}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "taskflow_outbox_relay_failures_total",
			Help: "Relay rounds that failed to publish, for example while RabbitMQ was unreachable.",
		}),
	}
	reg.MustRegister(r.published, r.failures)
	return r
}

// Notify wakes the relay because new rows were committed. It never blocks.
func (r *Relay) Notify() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run publishes until ctx ends, then returns nil. Rows that are not confirmed stay in the outbox
// for the next run of any relay.
func (r *Relay) Run(ctx context.Context) error {
	if l, ok := r.outbox.(Listener); ok {
		done := make(chan struct{})
		defer func() { <-done }()
		go func() {
			defer close(done)
			r.listen(ctx, l)
		}()
	}
	retry := backoff.Retrier{Policy: r.cfg.Retry}
	for ctx.Err() == nil {
		n, err := r.outbox.RelayOutbox(ctx, r.cfg.BatchSize, r.publish)
		if n > 0 {
			r.published.Add(float64(n))
		}
		if err != nil && ctx.Err() == nil {
			r.failures.Inc()
			r.logFailure(ctx, retry.Failures()+1, err)
			_ = retry.Wait(ctx)
			continue
		}
		if retry.Failures() > 0 {
			r.log.InfoContext(ctx, "outbox relay recovered", "failed_rounds", retry.Failures())
			retry.Reset()
		}
		if n == r.cfg.BatchSize {
			continue // a full batch: more rows are probably due
		}
		r.wait(ctx)
	}
	return nil
}

// listen calls Notify for rows committed elsewhere until ctx ends, listening again after a
// failure. While it cannot listen, the poll interval still finds the rows.
func (r *Relay) listen(ctx context.Context, l Listener) {
	retry := backoff.Retrier{Policy: r.cfg.Retry}
	for ctx.Err() == nil {
		err := l.ListenOutbox(ctx, func() {
			retry.Reset()
			r.Notify()
		})
		if ctx.Err() != nil {
			return
		}
		if retry.Failures() == 0 {
			r.log.WarnContext(ctx, "cannot listen for outbox rows written by workers; the relay polls for them", "err", err)
		}
		_ = retry.Wait(ctx)
	}
}

// logFailure logs the first failure of a streak and then every 20th, so an outage of minutes
// gives a few lines instead of hundreds.
func (r *Relay) logFailure(ctx context.Context, streak int, err error) {
	if streak == 1 || streak%20 == 0 {
		r.log.WarnContext(ctx, "outbox relay cannot publish; tasks stay in the outbox and are retried",
			"err", err, "failed_rounds", streak)
	}
}

// wait sleeps until Notify, the next due row, the poll interval or the end of ctx.
func (r *Relay) wait(ctx context.Context) {
	delay := r.cfg.PollInterval
	if due, ok, err := r.outbox.NextOutboxDue(ctx); err == nil && ok {
		delay = min(delay, max(time.Until(due), 0))
	}
	if delay == 0 {
		return
	}
	timer := time.NewTimer(delay)
	defer timer.Stop()
	select {
	case <-ctx.Done():
	case <-r.wake:
	case <-timer.C:
	}
}

// publish sends the messages of rows, at most broker.MaxBatch per call, and returns the ids of
// the rows whose messages were all confirmed.
func (r *Relay) publish(ctx context.Context, rows []store.OutboxRow) ([]int64, error) {
	var published []int64
	var errs []error
	for len(rows) > 0 {
		n, size := 0, 0
		for n < len(rows) && (n == 0 || size+len(rows[n].Messages) <= broker.MaxBatch) {
			size += len(rows[n].Messages)
			n++
		}
		ok, err := r.publishRows(ctx, rows[:n])
		published = append(published, ok...)
		if err != nil {
			errs = append(errs, err)
		}
		rows = rows[n:]
	}
	return published, errors.Join(errs...)
}

func (r *Relay) publishRows(ctx context.Context, rows []store.OutboxRow) ([]int64, error) {
	var msgs []broker.Message
	for _, row := range rows {
		for _, m := range row.Messages {
			msgs = append(msgs, m.Message(row.Queue))
		}
	}
	confirmed, err := r.pub.Publish(ctx, msgs...)
	var published []int64
	i := 0
	for _, row := range rows {
		all := true
		for range row.Messages {
			all = all && i < len(confirmed) && confirmed[i]
			i++
		}
		if all {
			published = append(published, row.ID)
		}
	}
	return published, err
}
