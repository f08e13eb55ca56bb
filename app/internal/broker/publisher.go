package broker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// MaxBatch is the largest number of messages one Publish call accepts.
const MaxBatch = 1000

// Errors for messages the broker did not accept. Publish wraps them.
var (
	// ErrUnroutable means no queue took the message, for example because the queue does not exist
	// yet. The message was dropped by the broker and must be sent again.
	ErrUnroutable = errors.New("message unroutable")
	// ErrNacked means the broker refused the message, for example a queue with reject-publish
	// overflow that is full.
	ErrNacked = errors.New("message rejected by broker")
)

// Message is one message to publish.
type Message struct {
	// Exchange is the target exchange; empty means the default exchange, where the routing key is
	// the name of the target queue.
	Exchange string
	Queue    string // routing key
	// Transient messages are not written to disk; task messages never are.
	Transient bool
	// MessageID must be unique within one Publish call; returned messages are matched by it.
	MessageID string
	Type      string
	Headers   amqp.Table
	Body      []byte
}

// Publisher publishes persistent, mandatory messages on a channel in confirm mode and waits for
// the broker to confirm each one. It reopens its channel after a failure. It is safe for
// concurrent use; calls are serialised.
type Publisher struct {
	conn *Conn

	mu      sync.Mutex
	ch      *amqp.Channel
	returns chan amqp.Return
}

// NewPublisher returns a Publisher on conn.
func NewPublisher(conn *Conn) *Publisher {
	return &Publisher{conn: conn}
}

// Publish sends msgs and waits until the broker confirms or rejects every one, or ctx ends. It
// returns, in the order of msgs, whether each was confirmed and routed. err is nil only when all
// were; otherwise it describes the first failure. A message not marked true may or may not have
// reached a queue, so the caller must send it again and the consumer must tolerate duplicates.
func (p *Publisher) Publish(ctx context.Context, msgs ...Message) (confirmed []bool, err error) {
	if len(msgs) > MaxBatch {
		return nil, fmt.Errorf("publish %d messages: at most %d fit in one call", len(msgs), MaxBatch)
	}
	confirmed = make([]bool, len(msgs))
	p.mu.Lock()
	defer p.mu.Unlock()

	ch, err := p.channel()
	if err != nil {
		return confirmed, err
	}
	pending := make([]*amqp.DeferredConfirmation, len(msgs))
	for i, m := range msgs {
		mode := amqp.Persistent
		if m.Transient {
			mode = amqp.Transient
		}
		pending[i], err = ch.PublishWithDeferredConfirmWithContext(ctx, m.Exchange, m.Queue, true, false, amqp.Publishing{
			DeliveryMode: mode,
			ContentType:  "application/json",
			MessageId:    m.MessageID,
			Type:         m.Type,
			Headers:      m.Headers,
			Timestamp:    time.Now().UTC().Truncate(time.Second),
			Body:         m.Body,
		})
		if err != nil {
			p.reset()
			return confirmed, fmt.Errorf("publish to %q: %w", m.Queue, err)
		}
	}

	var firstErr error
	for i, dc := range pending {
		acked, err := dc.WaitContext(ctx)
		switch {
		case err != nil:
			// The channel may still deliver confirms for this batch later, so it cannot be reused.
			p.reset()
			return confirmed, fmt.Errorf("wait for publisher confirm: %w", err)
		case !acked:
			firstErr = firstError(firstErr, fmt.Errorf("publish to %q: %w", msgs[i].Queue, ErrNacked))
		default:
			confirmed[i] = true
		}
	}
	if ch.IsClosed() {
		// A closed channel gives every outstanding confirmation a nack.
		p.reset()
	}

	// RabbitMQ sends basic.return before the basic.ack of the same message, and amqp091-go hands
	// both over on one goroutine, so every return of this batch is already buffered.
drain:
	for {
		select {
		case r := <-p.returns:
			for i, m := range msgs {
				if m.MessageID == r.MessageId && confirmed[i] {
					confirmed[i] = false
					firstErr = firstError(firstErr, fmt.Errorf("publish to %q: %w: %s", m.Queue, ErrUnroutable, r.ReplyText))
					break
				}
			}
		default:
			break drain
		}
	}
	return confirmed, firstErr
}

func firstError(first, next error) error {
	if first != nil {
		return first
	}
	return next
}

// channel returns the open confirm-mode channel, opening one if needed. p.mu must be held.
func (p *Publisher) channel() (*amqp.Channel, error) {
	if p.ch != nil && !p.ch.IsClosed() {
		return p.ch, nil
	}
	ch, err := p.conn.Channel()
	if err != nil {
		return nil, err
	}
	if err := ch.Confirm(false); err != nil {
		_ = ch.Close()
		return nil, fmt.Errorf("enable publisher confirms: %w", err)
	}
	// The buffer holds the returns of one full batch, so the connection's reader goroutine never
	// blocks on it between two calls.
	p.returns = ch.NotifyReturn(make(chan amqp.Return, MaxBatch))
	p.ch = ch
	return ch, nil
}

// reset drops the channel so that the next call opens a new one. p.mu must be held.
func (p *Publisher) reset() {
	if p.ch != nil {
		_ = p.ch.Close()
	}
	p.ch = nil
	p.returns = nil
}

// Close closes the publisher's channel. The connection stays open.
func (p *Publisher) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reset()
}
