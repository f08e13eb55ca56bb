package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/taskflow-dev/taskflow/app/internal/builtin"
	"github.com/taskflow-dev/taskflow/app/internal/stack"
	"github.com/taskflow-dev/taskflow/app/internal/task"
	"github.com/taskflow-dev/taskflow/app/internal/worker"
)

// trivialTask is the task every pipeline run submits: it takes microseconds, so the run measures
// the pipeline and not the handler.
const trivialTask = `{"task":"fib","args":{"n":10}}`

// runPipeline submits cfg.Tasks tasks through the api of an in-process stack with the given number
// of workers and waits for every result.
func runPipeline(ctx context.Context, cfg Config, workers int) (Measurement, error) {
	dbURL, drop, err := freshDatabase(ctx, cfg.DatabaseURL)
	if err != nil {
		return Measurement{}, err
	}
	defer drop()
	registry := task.NewRegistry()
	builtin.Register(registry)
	queue := fmt.Sprintf("bench-%d-%d", workers, time.Now().UnixNano())
	wcfg := worker.Config{Name: "bench", Queue: queue, Concurrency: cfg.Concurrency, Prefetch: cfg.Prefetch}
	s, err := stack.Start(ctx, stack.Config{
		DatabaseURL: dbURL, RabbitMQURL: cfg.RabbitMQURL, Registry: registry, Workers: workers,
		Worker: wcfg, DBMaxConns: cfg.Concurrency + cfg.Clients + 4,
	})
	if err != nil {
		return Measurement{}, err
	}
	defer deleteQueues(cfg.RabbitMQURL, wcfg.Topology().Queues()) // after Stop: defers run last-in first-out
	defer s.Stop()
	if err := waitConsumers(ctx, cfg.RabbitMQURL, queue, workers, 30*time.Second); err != nil {
		return Measurement{}, err
	}

	// Submit with cfg.Clients concurrent clients.
	checkpoint(ctx, dbURL)
	start := time.Now()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: cfg.Clients}, Timeout: 30 * time.Second}
	var next atomic.Int64
	errs := make(chan error, cfg.Clients)
	var wg sync.WaitGroup
	for range cfg.Clients {
		wg.Go(func() {
			for next.Add(1) <= int64(cfg.Tasks) {
				if err := post(ctx, client, s.URL+"/api/tasks"); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return Measurement{}, err
	}

	// Wait for the results, then read the timings the database recorded.
	db, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return Measurement{}, err
	}
	defer db.Close(context.Background())
	deadline := time.Now().Add(cfg.Timeout)
	for {
		var done int
		if err := db.QueryRow(ctx, `SELECT count(*) FROM tasks WHERE state = 'SUCCESS'`).Scan(&done); err != nil {
			return Measurement{}, err
		}
		if done == cfg.Tasks {
			break
		}
		if time.Now().After(deadline) {
			return Measurement{}, fmt.Errorf("%d of %d tasks finished after %s", done, cfg.Tasks, cfg.Timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
	latencies, last, err := readTimings(ctx, db, `SELECT created_at, finished_at FROM tasks`)
	if err != nil {
		return Measurement{}, err
	}
	return summarize("pipeline", workers, last.Sub(start), latencies), nil
}

func post(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader([]byte(trivialTask)))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("submit: status %d: %s", resp.StatusCode, body)
	}
	return nil
}
