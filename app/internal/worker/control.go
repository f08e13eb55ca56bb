package worker

import (
	"context"
	"os"
	"slices"
	"time"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/taskflow-dev/taskflow/app/internal/backoff"
	"github.com/taskflow-dev/taskflow/app/internal/event"
)

// control receives operator commands until ctx ends. Each round subscribes an exclusive queue to
// the control exchange and then reloads the paused queues from PostgreSQL, so a command sent while
// this worker was disconnected still takes effect.
func (w *Worker) control(ctx context.Context) {
	retry := backoff.Retrier{Policy: w.cfg.Reconnect}
	for ctx.Err() == nil {
		err := w.controlRound(ctx)
		if ctx.Err() != nil {
			return
		}
		if retry.Failures() == 0 {
			w.log.WarnContext(ctx, "control channel lost; reconnecting", "err", err)
		}
		_ = retry.Wait(ctx)
	}
}

func (w *Worker) controlRound(ctx context.Context) error {
	ch, err := w.conn.Channel()
	if err != nil {
		return err
	}
	defer ch.Close()
	if err := event.Declare(ch); err != nil {
		return err
	}
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		return err
	}
	if err := ch.QueueBind(q.Name, "", event.ControlExchange, false, nil); err != nil {
		return err
	}
	commands, err := ch.Consume(q.Name, "", true, true, false, false, nil)
	if err != nil {
		return err
	}
	closed := ch.NotifyClose(make(chan *amqp.Error, 1))
	w.reloadPaused(ctx)

	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-closed:
			return channelClosed(err)
		case d, ok := <-commands:
			if !ok {
				return channelClosed(nil)
			}
			var cmd event.Command
			if err := event.Decode(d.Body, &cmd); err != nil {
				w.log.WarnContext(ctx, "ignoring unreadable command", "err", err)
				continue
			}
			w.apply(ctx, cmd)
		}
	}
}

// apply carries out one command. Commands for other queues are ignored.
func (w *Worker) apply(ctx context.Context, cmd event.Command) {
	switch cmd.Command {
	case event.CommandPause, event.CommandResume:
		if cmd.Queue == w.cfg.Queue {
			w.setPaused(ctx, cmd.Command == event.CommandPause)
		}
	case event.CommandRevoke:
		w.revoke(ctx, cmd.TaskID)
	default:
		w.log.WarnContext(ctx, "ignoring unknown command", "command", cmd.Command)
	}
}

// reloadPaused reads the paused queues from PostgreSQL. On error it keeps the current state.
func (w *Worker) reloadPaused(ctx context.Context) {
	queues, err := w.store.PausedQueues(ctx)
	if err != nil {
		w.log.WarnContext(ctx, "cannot read paused queues; keeping the current state", "err", err)
		return
	}
	w.setPaused(ctx, slices.Contains(queues, w.cfg.Queue))
}

func (w *Worker) setPaused(ctx context.Context, paused bool) {
	if w.paused.Swap(paused) == paused {
		return
	}
	if paused {
		w.log.InfoContext(ctx, "pausing: no new tasks from this queue; running tasks finish", "queue", w.cfg.Queue)
	} else {
		w.log.InfoContext(ctx, "resuming", "queue", w.cfg.Queue)
	}
	select {
	case w.pauseChanged <- struct{}{}:
	default:
	}
	w.emitWorker(event.WorkerHeartbeat)
}

// revoke cancels the attempt of id if it runs here. The task is already REVOKED in PostgreSQL, so
// the attempt's outcome will not be applied; cancelling only frees the slot sooner.
func (w *Worker) revoke(ctx context.Context, id uuid.UUID) {
	v, ok := w.running.Load(id)
	if !ok {
		return
	}
	rt := v.(*runningTask)
	rt.revoked.Store(true)
	rt.cancel()
	w.log.InfoContext(ctx, "cancelled a revoked task", "task_id", id)
}

// heartbeat sends worker.heartbeat events until ctx ends.
func (w *Worker) heartbeat(ctx context.Context) {
	ticker := time.NewTicker(w.cfg.HeartbeatInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			w.emitWorker(event.WorkerHeartbeat)
		}
	}
}

func (w *Worker) emitWorker(kind string) {
	var paused []string
	if w.paused.Load() {
		paused = []string{w.cfg.Queue}
	}
	w.events.Emit(kind, event.Worker{
		Type: kind, Worker: w.cfg.Name, Hostname: w.hostname, PID: os.Getpid(), Queue: w.cfg.Queue,
		Concurrency: w.cfg.Concurrency, Active: int(w.active.Load()),
		Processed: w.processed.Load(), Failed: w.failed.Load(), Paused: paused,
		IntervalMS: w.cfg.HeartbeatInterval.Milliseconds(), Time: time.Now().UTC(),
	})
}

func (w *Worker) emitTask(kind string, claim taskRef, extra func(*event.Task)) {
	e := event.Task{Type: kind, TaskID: claim.id, Task: claim.name, Worker: w.cfg.Name,
		Attempt: claim.attempt, Time: time.Now().UTC()}
	if extra != nil {
		extra(&e)
	}
	w.events.Emit(kind, e)
}

// taskRef identifies an attempt in events.
type taskRef struct {
	id      uuid.UUID
	name    string
	attempt int
}
