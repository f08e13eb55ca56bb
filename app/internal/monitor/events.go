package monitor

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/taskflow-dev/taskflow/app/internal/backoff"
	"github.com/taskflow-dev/taskflow/app/internal/event"
)

// eventQueueLength caps the monitor's event queue. When the monitor falls behind, RabbitMQ drops
// the oldest events, which the next heartbeats make good.
const eventQueueLength = 10000

// consumeEvents consumes worker and task events until ctx ends, reconnecting with backoff after a
// connection or channel failure.
func (m *Monitor) consumeEvents(ctx context.Context) {
	retry := backoff.Retrier{Policy: backoff.Policy{Base: 200 * time.Millisecond, Max: 15 * time.Second}}
	for ctx.Err() == nil {
		consumed, err := m.consumeOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		if consumed {
			retry.Reset()
		}
		if retry.Failures() == 0 || retry.Failures()%10 == 9 {
			m.log.WarnContext(ctx, "event consumer stopped; reconnecting", "err", err, "failures", retry.Failures()+1)
		}
		_ = retry.Wait(ctx)
	}
}

// consumeOnce declares the exchanges and an exclusive, auto-deleted queue bound to every routing
// key of the events exchange, and consumes it until the channel closes or ctx ends. consumed
// reports whether the consumer started.
func (m *Monitor) consumeOnce(ctx context.Context) (consumed bool, err error) {
	ch, err := m.broker.Channel()
	if err != nil {
		return false, err
	}
	defer ch.Close()
	if err := event.Declare(ch); err != nil {
		return false, fmt.Errorf("declare event exchanges: %w", err)
	}
	// The queue is classic because exclusive queues cannot be quorum queues.
	q, err := ch.QueueDeclare("", false, true, true, false, amqp.Table{
		"x-queue-type": "classic",
		"x-max-length": int64(eventQueueLength),
		"x-overflow":   "drop-head",
	})
	if err != nil {
		return false, fmt.Errorf("declare event queue: %w", err)
	}
	if err := ch.QueueBind(q.Name, "#", event.EventsExchange, false, nil); err != nil {
		return false, fmt.Errorf("bind event queue: %w", err)
	}
	deliveries, err := ch.Consume(q.Name, "", true, true, false, false, nil)
	if err != nil {
		return false, fmt.Errorf("consume event queue: %w", err)
	}
	closed := ch.NotifyClose(make(chan *amqp.Error, 1))
	m.log.InfoContext(ctx, "consuming events", "queue", q.Name)

	for {
		select {
		case <-ctx.Done():
			return true, nil
		case err := <-closed:
			if err == nil {
				return true, fmt.Errorf("event channel closed")
			}
			return true, fmt.Errorf("event channel closed: %w", err)
		case d, ok := <-deliveries:
			if !ok {
				return true, fmt.Errorf("event consumer cancelled by the broker")
			}
			m.handleEvent(ctx, d.RoutingKey, d.Body)
		}
	}
}

// handleEvent applies one event. Unreadable events are counted and logged at debug level, since
// events are best effort and a bad one must not stop the consumer.
func (m *Monitor) handleEvent(ctx context.Context, routingKey string, body []byte) {
	switch {
	case strings.HasPrefix(routingKey, "worker."):
		var w event.Worker
		if err := event.Decode(body, &w); err != nil {
			m.metrics.badEvents.Inc()
			m.log.DebugContext(ctx, "ignoring unreadable worker event", "routing_key", routingKey, "err", err)
			return
		}
		if w.Type == "" {
			w.Type = routingKey
		}
		m.workers.Observe(w)
	case strings.HasPrefix(routingKey, "task."):
		var t event.Task
		if err := event.Decode(body, &t); err != nil {
			m.metrics.badEvents.Inc()
			m.log.DebugContext(ctx, "ignoring unreadable task event", "routing_key", routingKey, "err", err)
			return
		}
		if t.Type == "" {
			t.Type = routingKey
		}
		m.metrics.observeTask(t)
		data, err := json.Marshal(t)
		if err != nil {
			return
		}
		m.hub.publish(streamEvent{Name: "task", Data: string(data)}, false)
	}
}
