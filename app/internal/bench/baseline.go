package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	amqp "github.com/rabbitmq/amqp091-go"
)

// runBaseline publishes cfg.Tasks messages and consumes them with `consumers` bare consumers that
// insert a row per message and then acknowledge it.
func runBaseline(ctx context.Context, cfg Config, consumers int) (Measurement, error) {
	dbURL, drop, err := freshDatabase(ctx, cfg.DatabaseURL)
	if err != nil {
		return Measurement{}, err
	}
	defer drop()
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		return Measurement{}, err
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, `CREATE TABLE baseline (
		id bigint PRIMARY KEY, published_at timestamptz NOT NULL,
		inserted_at timestamptz NOT NULL DEFAULT clock_timestamp())`); err != nil {
		return Measurement{}, err
	}
	queue := fmt.Sprintf("baseline-%d-%d", consumers, time.Now().UnixNano())
	defer deleteQueues(cfg.RabbitMQURL, []string{queue})

	// Consumers, each with its own connection, cfg.Concurrency goroutines and cfg.Prefetch.
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var inserted atomic.Int64
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for range consumers {
		conn, err := amqp.Dial(cfg.RabbitMQURL)
		if err != nil {
			return Measurement{}, err
		}
		defer conn.Close()
		ch, err := conn.Channel()
		if err != nil {
			return Measurement{}, err
		}
		if _, err := ch.QueueDeclare(queue, true, false, false, false, amqp.Table{"x-queue-type": "quorum"}); err != nil {
			return Measurement{}, err
		}
		if err := ch.Qos(cfg.Prefetch, 0, false); err != nil {
			return Measurement{}, err
		}
		deliveries, err := ch.Consume(queue, "", false, false, false, false, nil)
		if err != nil {
			return Measurement{}, err
		}
		for range cfg.Concurrency {
			wg.Go(func() {
				for {
					select {
					case <-runCtx.Done():
						return
					case d, ok := <-deliveries:
						if !ok {
							return
						}
						id := int64(binary.BigEndian.Uint64(d.Body[0:8]))
						published := time.Unix(0, int64(binary.BigEndian.Uint64(d.Body[8:16])))
						if _, err := pool.Exec(runCtx, `INSERT INTO baseline (id, published_at) VALUES ($1, $2)`, id, published); err != nil {
							return
						}
						_ = d.Ack(false)
						inserted.Add(1)
					}
				}
			})
		}
	}
	if err := waitConsumers(ctx, cfg.RabbitMQURL, queue, consumers, 30*time.Second); err != nil {
		return Measurement{}, err
	}

	// Publishers: cfg.Clients goroutines, each sending one message at a time and waiting for its
	// confirm, as a client of the api waits for its 202.
	pubConn, err := amqp.Dial(cfg.RabbitMQURL)
	if err != nil {
		return Measurement{}, err
	}
	defer pubConn.Close()
	checkpoint(ctx, dbURL)
	start := time.Now()
	var next atomic.Int64
	errs := make(chan error, cfg.Clients)
	var pubs sync.WaitGroup
	for range cfg.Clients {
		pubs.Go(func() {
			ch, err := pubConn.Channel()
			if err != nil {
				errs <- err
				return
			}
			defer ch.Close()
			if err := ch.Confirm(false); err != nil {
				errs <- err
				return
			}
			body := make([]byte, 16)
			for {
				id := next.Add(1)
				if id > int64(cfg.Tasks) {
					return
				}
				binary.BigEndian.PutUint64(body[0:8], uint64(id))
				binary.BigEndian.PutUint64(body[8:16], uint64(time.Now().UnixNano()))
				dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", queue, true, false,
					amqp.Publishing{DeliveryMode: amqp.Persistent, Body: body})
				if err != nil {
					errs <- err
					return
				}
				if ok, err := dc.WaitContext(ctx); err != nil || !ok {
					errs <- fmt.Errorf("publish %d not confirmed: %v", id, err)
					return
				}
			}
		})
	}
	pubs.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return Measurement{}, err
	}

	deadline := time.Now().Add(cfg.Timeout)
	for inserted.Load() < int64(cfg.Tasks) {
		if time.Now().After(deadline) {
			return Measurement{}, fmt.Errorf("%d of %d messages consumed after %s", inserted.Load(), cfg.Tasks, cfg.Timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()

	latencies, last, err := readTimings(ctx, pool, `SELECT published_at, inserted_at FROM baseline`)
	if err != nil {
		return Measurement{}, err
	}
	return summarize("baseline", consumers, last.Sub(start), latencies), nil
}

// waitConsumers waits until queue has at least n consumers.
func waitConsumers(ctx context.Context, amqpURL, queue string, n int, timeout time.Duration) error {
	conn, err := amqp.Dial(amqpURL)
	if err != nil {
		return err
	}
	defer conn.Close()
	deadline := time.Now().Add(timeout)
	for {
		ch, err := conn.Channel()
		if err != nil {
			return err
		}
		q, err := ch.QueueDeclarePassive(queue, true, false, false, false, amqp.Table{"x-queue-type": "quorum"})
		_ = ch.Close()
		if err == nil && q.Consumers >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("queue %s has not got %d consumers after %s (last error: %v)", queue, n, timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// deleteQueues removes the benchmark's queues so repeated runs leave nothing behind.
func deleteQueues(amqpURL string, queues []string) {
	conn, err := amqp.Dial(amqpURL)
	if err != nil {
		return
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return
	}
	for _, name := range queues {
		_, _ = ch.QueueDelete(name, false, false, false)
	}
}
