package event

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/taskflow-dev/taskflow/app/internal/backoff"
	"github.com/taskflow-dev/taskflow/app/internal/broker"
)

// Declare declares the events and control exchanges on ch. Both are durable, so bindings of
// durable queues survive a broker restart; declaring them again is harmless.
func Declare(ch *amqp.Channel) error {
	if err := ch.ExchangeDeclare(EventsExchange, amqp.ExchangeTopic, true, false, false, false, nil); err != nil {
		return err
	}
	return ch.ExchangeDeclare(ControlExchange, amqp.ExchangeFanout, true, false, false, false, nil)
}

// PublishCommand sends cmd to every worker with a publisher confirm. When no worker is bound to
// the control exchange the broker returns the message, which is not an error: the state a command
// changes is stored in PostgreSQL, and workers read it when they start.
func PublishCommand(ctx context.Context, pub *broker.Publisher, cmd Command) error {
	if cmd.Time.IsZero() {
		cmd.Time = time.Now().UTC()
	}
	body, err := json.Marshal(cmd)
	if err != nil {
		return err
	}
	msg := broker.Message{Exchange: ControlExchange, MessageID: cmd.Command, Transient: true, Body: body}
	if _, err := pub.Publish(ctx, msg); err != nil && !isUnroutable(err) {
		return err
	}
	return nil
}

// Commands sends commands to every worker. Its methods satisfy the interfaces the api and the
// monitor declare. It is safe for concurrent use.
type Commands struct {
	conn     *broker.Conn
	pub      *broker.Publisher
	declared atomic.Bool
}

// NewCommands returns a Commands that publishes through pub, on conn.
func NewCommands(conn *broker.Conn, pub *broker.Publisher) *Commands {
	return &Commands{conn: conn, pub: pub}
}

// Revoked tells every worker that the task was revoked.
func (c *Commands) Revoked(ctx context.Context, id uuid.UUID) error {
	return c.send(ctx, Command{Command: CommandRevoke, TaskID: id})
}

// Paused tells every worker to stop or restart consuming queue.
func (c *Commands) Paused(ctx context.Context, queue string, paused bool) error {
	cmd := Command{Command: CommandResume, Queue: queue}
	if paused {
		cmd.Command = CommandPause
	}
	return c.send(ctx, cmd)
}

// send declares the exchanges once, because publishing to a missing exchange closes the channel,
// and then publishes cmd.
func (c *Commands) send(ctx context.Context, cmd Command) error {
	if !c.declared.Load() {
		ch, err := c.conn.Channel()
		if err != nil {
			return err
		}
		err = Declare(ch)
		_ = ch.Close()
		if err != nil {
			return fmt.Errorf("declare event exchanges: %w", err)
		}
		c.declared.Store(true)
	}
	return PublishCommand(ctx, c.pub, cmd)
}

// Emitter publishes events in the background, best effort: Emit never blocks, and events that
// find the buffer full or the broker unreachable are dropped and counted. It uses a channel of its
// own without publisher confirms, because PostgreSQL holds the history that events only announce.
type Emitter struct {
	conn    *broker.Conn
	log     *slog.Logger
	queue   chan outgoing
	dropped atomic.Int64
	closed  atomic.Bool
	stop    context.CancelFunc
	stopCtx context.Context
	done    chan struct{}
	once    sync.Once
}

type outgoing struct {
	key  string
	body []byte
}

// emitterBuffer is the number of events held while the broker is slow or unreachable.
const emitterBuffer = 1024

// NewEmitter returns an Emitter on conn. Call Run in a goroutine, and Close to flush.
func NewEmitter(conn *broker.Conn, log *slog.Logger) *Emitter {
	ctx, cancel := context.WithCancel(context.Background())
	return &Emitter{conn: conn, log: log, queue: make(chan outgoing, emitterBuffer),
		stop: cancel, stopCtx: ctx, done: make(chan struct{})}
}

// Emit queues v, marshalled to JSON, for the routing key. It never blocks. Events emitted after
// Close are dropped.
func (e *Emitter) Emit(key string, v any) {
	body, err := json.Marshal(v)
	if err != nil || e.closed.Load() {
		e.dropped.Add(1)
		return
	}
	select {
	case e.queue <- outgoing{key: key, body: body}:
	default:
		e.dropped.Add(1)
	}
}

// Dropped returns the number of events dropped so far.
func (e *Emitter) Dropped() int64 { return e.dropped.Load() }

// Run publishes queued events, reconnecting with backoff, until Close has been called and the
// queue is empty. Once closing, it drops events instead of waiting for an unreachable broker.
func (e *Emitter) Run() {
	defer close(e.done)
	retry := backoff.Retrier{Policy: backoff.Policy{Base: 200 * time.Millisecond, Max: 10 * time.Second}}
	var ch *amqp.Channel
	defer func() {
		if ch != nil {
			_ = ch.Close()
		}
	}()
	for {
		var out outgoing
		select {
		case out = <-e.queue:
		case <-e.stopCtx.Done():
			select {
			case out = <-e.queue:
			default:
				return
			}
		}
		for {
			if ch == nil {
				opened, err := e.open()
				if err != nil {
					if retry.Failures() == 0 {
						e.log.Warn("cannot publish events; dropping them until the broker is back", "err", err)
					}
					if e.stopCtx.Err() != nil || retry.Wait(e.stopCtx) != nil {
						e.dropped.Add(1)
						break
					}
					continue
				}
				ch = opened
				retry.Reset()
			}
			err := ch.PublishWithContext(context.Background(), EventsExchange, out.key, false, false, amqp.Publishing{
				ContentType: "application/json", DeliveryMode: amqp.Transient, Timestamp: time.Now().UTC(), Body: out.body,
			})
			if err == nil {
				break
			}
			_ = ch.Close()
			ch = nil
		}
	}
}

func (e *Emitter) open() (*amqp.Channel, error) {
	ch, err := e.conn.Channel()
	if err != nil {
		return nil, err
	}
	if err := Declare(ch); err != nil {
		_ = ch.Close()
		return nil, err
	}
	return ch, nil
}

// Close stops accepting events and waits until Run has sent what is queued, or has dropped it
// because the broker is unreachable. Run must have been started.
func (e *Emitter) Close() {
	e.once.Do(func() {
		e.closed.Store(true)
		e.stop()
	})
	<-e.done
}

func isUnroutable(err error) bool {
	return errors.Is(err, broker.ErrUnroutable)
}
