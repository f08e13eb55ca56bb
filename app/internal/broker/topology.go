package broker

import (
	"fmt"
	"math"
	"slices"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Topology names and declares the queues of one work queue. All queues are durable quorum queues
// on the default exchange, so a message is addressed by queue name:
//
//   - Queue, the work queue. A message returned to it more than DeliveryLimit times (a worker
//     crashed or lost its connection each time) is dead-lettered to PoisonQueue by RabbitMQ.
//   - DelayQueue(d) for each retry delay d: a message waits there for d (x-message-ttl), then is
//     dead-lettered back to Queue with the at-least-once strategy, so a retry survives a broker
//     restart. Each delay queue has a single TTL, so messages leave it in order and none waits
//     behind a longer one; jitter comes from choosing among the delays.
//   - DeadLetterQueue, where workers put tasks that failed all their attempts.
//   - PoisonQueue, for messages over the delivery limit.
//
// Workers own the topology and declare it on every connect. Publishers use the mandatory flag
// instead of declaring, so a message to a queue that does not exist yet is returned, not lost.
type Topology struct {
	Queue         string
	DeliveryLimit int
	RetryDelays   []time.Duration // ascending
	// ServerMajor is the RabbitMQ major version. From 4.0 on, quorum queues drop a message after
	// 20 deliveries unless told otherwise, so the dead-letter and poison queues, whose messages
	// operators may browse many times, are declared without a limit; 3.x rejects that argument.
	ServerMajor int
}

// DeadLetterQueue returns the name of the queue for tasks that exhausted their retries.
func (t Topology) DeadLetterQueue() string { return t.Queue + ".dlq" }

// PoisonQueue returns the name of the queue for messages over the delivery limit.
func (t Topology) PoisonQueue() string { return t.Queue + ".poison" }

// DelayQueue returns the name of the queue that holds messages for d before they return to Queue.
func (t Topology) DelayQueue(d time.Duration) string {
	return fmt.Sprintf("%s.delay.%dms", t.Queue, d.Milliseconds())
}

// Queues returns the names of every queue of the topology.
func (t Topology) Queues() []string {
	names := []string{t.Queue, t.DeadLetterQueue(), t.PoisonQueue()}
	for _, d := range t.RetryDelays {
		names = append(names, t.DelayQueue(d))
	}
	return names
}

// DelayFor returns the longest retry delay that is not longer than d, or the shortest one when
// all are longer.
func (t Topology) DelayFor(d time.Duration) time.Duration {
	i, found := slices.BinarySearch(t.RetryDelays, d)
	switch {
	case found:
		return t.RetryDelays[i]
	case i == 0:
		return t.RetryDelays[0]
	default:
		return t.RetryDelays[i-1]
	}
}

// Declare declares every queue of the topology on ch. Declaring an existing queue with the same
// arguments is a no-op; different arguments close the channel with PRECONDITION_FAILED, which
// happens when DeliveryLimit changes for an existing queue.
func (t Topology) Declare(ch *amqp.Channel) error {
	quorum := func(extra amqp.Table) amqp.Table {
		args := amqp.Table{"x-queue-type": "quorum"}
		for k, v := range extra {
			args[k] = v
		}
		return args
	}
	queues := []struct {
		name string
		args amqp.Table
	}{
		{t.Queue, quorum(amqp.Table{
			"x-delivery-limit":          int64(t.DeliveryLimit),
			"x-dead-letter-exchange":    "",
			"x-dead-letter-routing-key": t.PoisonQueue(),
		})},
		{t.DeadLetterQueue(), quorum(t.unlimited())},
		{t.PoisonQueue(), quorum(t.unlimited())},
	}
	for _, d := range t.RetryDelays {
		queues = append(queues, struct {
			name string
			args amqp.Table
		}{t.DelayQueue(d), quorum(amqp.Table{
			"x-message-ttl":             d.Milliseconds(),
			"x-dead-letter-exchange":    "",
			"x-dead-letter-routing-key": t.Queue,
			"x-dead-letter-strategy":    "at-least-once",
			// at-least-once dead-lettering requires reject-publish overflow.
			"x-overflow": "reject-publish",
		})})
	}
	for _, q := range queues {
		if _, err := ch.QueueDeclare(q.name, true, false, false, false, q.args); err != nil {
			return fmt.Errorf("declare queue %q: %w", q.name, err)
		}
	}
	return nil
}

// unlimited returns the arguments that lift the default delivery limit of RabbitMQ 4.
func (t Topology) unlimited() amqp.Table {
	if t.ServerMajor < 4 {
		return nil
	}
	return amqp.Table{"x-delivery-limit": int64(-1)}
}

// RetryDelays returns the delay tiers from base to at least maxDelay, each √2 times the previous,
// rounded to milliseconds. Rounding a random backoff down to a tier keeps it within a factor of
// √2 of the intended value, which leaves enough spread to avoid retry storms while needing only
// about two queues per doubling.
func RetryDelays(base, maxDelay time.Duration) []time.Duration {
	base = max(base, time.Millisecond)
	var delays []time.Duration
	for i := 0; ; i++ {
		d := time.Duration(float64(base) * math.Pow(math.Sqrt2, float64(i))).Round(time.Millisecond)
		if len(delays) == 0 || d > delays[len(delays)-1] {
			delays = append(delays, d)
		}
		if d >= maxDelay {
			return delays
		}
	}
}
