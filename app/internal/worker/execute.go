package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/taskflow-dev/taskflow/app/internal/backoff"
	"github.com/taskflow-dev/taskflow/app/internal/broker"
	"github.com/taskflow-dev/taskflow/app/internal/event"
	"github.com/taskflow-dev/taskflow/app/internal/store"
	"github.com/taskflow-dev/taskflow/app/internal/task"
)

// handle processes one delivery from decoding to acknowledgement. ctx ends only when a drain
// times out; the message is then left unacknowledged and returns to the queue.
func (w *Worker) handle(ctx context.Context, d amqp.Delivery) {
	msg, err := broker.ParseTaskMessage(d.Body)
	if err != nil {
		// Nothing can run it, and retrying cannot help: the queue dead-letters it to the poison
		// queue, where an operator can inspect it.
		w.log.WarnContext(ctx, "rejecting unreadable message", "message_id", d.MessageId, "err", err)
		w.metrics.outcome("unknown", "rejected")
		_ = d.Reject(false)
		return
	}
	log := w.log.With("task_id", msg.ID, "task", msg.Task)

	if redeliveries := deliveryCount(d); redeliveries >= w.cfg.DeliveryLimit {
		w.poison(ctx, log, d, msg, redeliveries)
		return
	}

	var claim store.Claim
	err = w.withRetry(ctx, log, "load task", func(ctx context.Context) error {
		claim, err = w.loads.Do(ctx, msg.ID)
		return err
	})
	var notRunnable *store.NotRunnableError
	switch {
	case errors.As(err, &notRunnable) && notRunnable.State == "":
		log.WarnContext(ctx, "rejecting message for a task that does not exist")
		w.metrics.outcome("unknown", "rejected") // the name came from the message, not the registry
		_ = d.Reject(false)
		return
	case errors.As(err, &notRunnable):
		log.InfoContext(ctx, "skipping task", "state", notRunnable.State)
		w.metrics.outcome(msg.Task, "skipped")
		w.ack(ctx, log, d)
		return
	case err != nil:
		return // the drain timed out; the message returns to the queue
	}

	log = log.With("attempt", claim.Attempt)
	mark := w.markStarted(ctx, log, claim, d.Redelivered || deliveryCount(d) > 0)
	res, ran := w.run(ctx, claim)
	res.outcome.StartedAt = mark.startedAt
	mark.settle()
	if !ran {
		log.InfoContext(ctx, "task interrupted by shutdown; it returns to the queue")
		_ = d.Nack(false, true)
		return
	}
	w.settle(ctx, log, d, claim, res)
}

// startMarker writes the STARTED marker of one attempt, at once or after StartedAfter.
type startMarker struct {
	startedAt time.Time
	timer     *time.Timer
	done      chan struct{} // closed when a scheduled write has finished
}

// markStarted marks the attempt STARTED, and sends task.started, now when it follows a
// redelivery, so the lost attempt before it is recorded before this one runs, and otherwise when
// the attempt has run StartedAfter.
func (w *Worker) markStarted(ctx context.Context, log *slog.Logger, claim store.Claim, redelivered bool) *startMarker {
	m := &startMarker{startedAt: time.Now(), done: make(chan struct{})}
	write := func() {
		defer close(m.done)
		// The task.started event goes with the mark, so a short task sends one event, not two.
		w.emitTask(event.TaskStarted, refOf(claim), func(e *event.Task) { e.Time = m.startedAt })
		_ = w.withRetry(ctx, log, "mark task started", func(ctx context.Context) error {
			_, err := w.marks.Do(ctx, store.StartMark{ID: claim.ID, Attempt: claim.Attempt, StartedAt: m.startedAt})
			return err
		})
	}
	if redelivered || w.cfg.StartedAfter < 0 {
		write()
		return m
	}
	m.timer = time.AfterFunc(w.cfg.StartedAfter, write)
	return m
}

// settle cancels a mark that has not been written yet, or waits for one being written, so that
// it cannot land after the outcome and turn a RETRY back into STARTED.
func (m *startMarker) settle() {
	if m.timer != nil && m.timer.Stop() {
		return
	}
	<-m.done
}

// attemptResult is the end of one run of a handler.
type attemptResult struct {
	outcome   store.Outcome
	delay     time.Duration // the retry delay when outcome.State is RETRY
	permanent bool          // the handler marked its error as permanent
	runtime   time.Duration
}

// run executes the handler under the task's deadline. ran is false when ctx ended, that is when a
// drain timed out: the attempt did not really fail.
func (w *Worker) run(ctx context.Context, claim store.Claim) (res attemptResult, ran bool) {
	runCtx, cancel := context.WithTimeout(ctx, claim.Timeout)
	defer cancel()
	rt := &runningTask{cancel: cancel}
	w.running.Store(claim.ID, rt)
	defer w.running.Delete(claim.ID)

	w.metrics.active.Inc()
	w.active.Add(1)
	start := time.Now()
	result, err := w.runner.Run(runCtx, claim.Name, claim.Args)
	res.runtime = time.Since(start)
	w.active.Add(-1)
	w.metrics.active.Dec()
	w.metrics.duration.WithLabelValues(claim.Name).Observe(res.runtime.Seconds())
	if ctx.Err() != nil {
		return res, false
	}

	o := store.Outcome{ID: claim.ID, Attempt: claim.Attempt, Worker: w.cfg.Name, State: task.Success, Result: result}
	switch {
	case rt.revoked.Load():
		// The task is REVOKED in PostgreSQL already; this only records the attempt's end.
		o.State, o.Result, o.Error = task.Revoked, nil, "revoked while running"
	case err != nil:
		o.State, o.Result, o.Error = task.Retry, nil, err.Error()
		if errors.Is(err, context.DeadlineExceeded) {
			o.Error = fmt.Sprintf("timed out after %s", claim.Timeout)
		}
		var panicErr *task.PanicError
		if errors.As(err, &panicErr) {
			o.Traceback = panicErr.Stack
		}
		res.permanent = task.IsPermanent(err)
		if res.permanent || claim.Attempt-claim.RetryBase > claim.MaxRetries {
			o.State = task.Failure
		}
	}
	if o.State == task.Retry {
		res.delay = w.topology.DelayFor(w.cfg.Retry.Delay(claim.Attempt))
		o.RetryAt = time.Now().Add(res.delay)
	}
	res.outcome = o
	return res, true
}

// settle commits the outcome, sends the follow-up message (a delayed retry or a dead letter) and
// acknowledges the delivery, in that order, so a crash at any point leaves the message to be
// delivered again rather than lost.
func (w *Worker) settle(ctx context.Context, log *slog.Logger, d amqp.Delivery, claim store.Claim, res attemptResult) {
	o := res.outcome
	var applied bool
	err := w.withRetry(ctx, log, "store outcome", func(ctx context.Context) error {
		var err error
		applied, err = w.finishes.Do(ctx, o)
		return err
	})
	if err != nil {
		return // the drain timed out; the message returns to the queue
	}
	if !applied {
		// Another delivery of this task finished first, or the task was revoked while running.
		log.InfoContext(ctx, "discarding outcome: the task changed while it ran", "outcome", o.State)
		w.metrics.outcome(claim.Name, "discarded")
		w.ack(ctx, log, d)
		return
	}

	msg := broker.TaskMessage{ID: claim.ID, Task: claim.Name}
	ref := refOf(claim)
	runtime := func(e *event.Task) { e.RuntimeMS = float64(res.runtime.Microseconds()) / 1000 }
	switch o.State {
	case task.Success:
		log.InfoContext(ctx, "task succeeded", "duration", res.runtime.String())
		w.emitTask(event.TaskSucceeded, ref, runtime)
	case task.Retry:
		log.InfoContext(ctx, "task failed; retrying", "err", o.Error, "retry_in", res.delay.String())
		queue := w.topology.DelayQueue(res.delay)
		if !w.publish(ctx, log, msg.Message(queue)) {
			return
		}
		w.emitTask(event.TaskRetried, ref, func(e *event.Task) { runtime(e); e.Error, e.Queue = o.Error, queue })
	case task.Failure:
		log.WarnContext(ctx, "task failed", "err", o.Error, "permanent", res.permanent, "max_retries", claim.MaxRetries)
		w.emitTask(event.TaskFailed, ref, func(e *event.Task) { runtime(e); e.Error = o.Error })
		if !res.permanent {
			dead := msg.Message(w.topology.DeadLetterQueue())
			dead.Headers[broker.HeaderReason] = broker.ReasonRetriesExhausted
			dead.Headers[broker.HeaderError] = o.Error
			dead.Headers[broker.HeaderAttempts] = int64(claim.Attempt)
			if !w.publish(ctx, log, dead) {
				return
			}
			w.emitTask(event.TaskDead, ref, func(e *event.Task) { e.Error, e.Queue = o.Error, dead.Queue })
		}
	}
	w.processed.Add(1)
	if o.State != task.Success {
		w.failed.Add(1)
	}
	w.metrics.outcome(claim.Name, string(o.State))
	w.ack(ctx, log, d)
}

// poison fails a task whose message came back DeliveryLimit times without an outcome, moves the
// message to the poison queue and acknowledges it. The task is not run again: each earlier
// delivery ended with the worker crashing or losing its connection.
func (w *Worker) poison(ctx context.Context, log *slog.Logger, d amqp.Delivery, msg broker.TaskMessage, redeliveries int) {
	reason := fmt.Sprintf("delivered %d times without finishing: a worker crashed, was killed or lost its connection each time", redeliveries+1)
	err := w.withRetry(ctx, log, "store poison outcome", func(ctx context.Context) error {
		return w.store.FailUndelivered(ctx, msg.ID, reason)
	})
	if err != nil {
		return
	}
	dead := msg.Message(w.topology.PoisonQueue())
	dead.Headers[broker.HeaderReason] = broker.ReasonDeliveryLimit
	dead.Headers[broker.HeaderError] = reason
	if !w.publish(ctx, log, dead) {
		return
	}
	log.ErrorContext(ctx, "task moved to the poison queue", "err", reason, "queue", w.topology.PoisonQueue())
	w.emitTask(event.TaskDead, taskRef{id: msg.ID, name: msg.Task}, func(e *event.Task) { e.Error, e.Queue = reason, dead.Queue })
	w.metrics.outcome(msg.Task, "poisoned")
	w.ack(ctx, log, d)
}

// publish sends m with a confirm, retrying until it is confirmed or ctx ends.
func (w *Worker) publish(ctx context.Context, log *slog.Logger, m broker.Message) bool {
	err := w.withRetry(ctx, log, "publish to "+m.Queue, func(ctx context.Context) error {
		_, err := w.pub.Publish(ctx, m)
		return err
	})
	return err == nil
}

func (w *Worker) ack(ctx context.Context, log *slog.Logger, d amqp.Delivery) {
	if err := d.Ack(false); err != nil {
		// The channel closed while the task ran. RabbitMQ has requeued the message; its next
		// delivery finds the task finished and is acknowledged then.
		log.InfoContext(ctx, "ack failed because the channel closed; the redelivered copy will be acknowledged instead", "err", err)
	}
}

// withRetry calls op until it succeeds, it returns a *store.NotRunnableError, or ctx ends. Other
// errors are treated as an outage of PostgreSQL or RabbitMQ: the delivery stays unacknowledged
// meanwhile, which keeps its delivery count unchanged.
func (w *Worker) withRetry(ctx context.Context, log *slog.Logger, op string, f func(context.Context) error) error {
	retry := backoff.Retrier{Policy: w.cfg.Reconnect}
	for {
		err := f(ctx)
		var notRunnable *store.NotRunnableError
		if err == nil || errors.As(err, &notRunnable) {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if retry.Failures() == 0 || retry.Failures()%10 == 9 {
			log.WarnContext(ctx, op+" failed; retrying", "err", err, "failures", retry.Failures()+1)
		}
		if err := retry.Wait(ctx); err != nil {
			return err
		}
	}
}

func refOf(c store.Claim) taskRef {
	return taskRef{id: c.ID, name: c.Name, attempt: c.Attempt}
}

// deliveryCount returns how many times RabbitMQ delivered the message before. The header is absent
// on the first delivery.
func deliveryCount(d amqp.Delivery) int {
	switch n := d.Headers["x-delivery-count"].(type) {
	case int64:
		return int(n)
	case int32:
		return int(n)
	case int:
		return n
	}
	return 0
}
