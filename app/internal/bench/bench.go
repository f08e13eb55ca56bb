// Package bench measures end-to-end throughput and latency of the pipeline and of a raw baseline
// on the same RabbitMQ and PostgreSQL servers.
//
// The pipeline run submits Tasks trivial tasks through the HTTP API with Clients concurrent
// clients and waits until every result is committed. Latency is finished_at - created_at of each
// task row: from the moment the api committed the task to the moment a worker committed its
// result. Throughput is the number of tasks divided by the time from the first submit to the last
// committed result.
//
// The baseline is the least work that moves the same messages with the same guarantees: a
// publisher sends Tasks persistent messages with publisher confirms to a quorum queue, and
// consumers with the same concurrency and prefetch insert one row per message (a committed
// transaction each) and then acknowledge it. Its latency runs from the publish to the insert.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	neturl "net/url"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Config describes one benchmark run.
type Config struct {
	DatabaseURL string
	RabbitMQURL string
	// Tasks is the number of tasks per measurement.
	Tasks int
	// Clients is the number of concurrent HTTP clients (pipeline) or publishers (baseline).
	Clients int
	// Concurrency and Prefetch apply to every worker and every baseline consumer.
	Concurrency int
	Prefetch    int
	// Workers lists the worker counts to measure, such as [1 2].
	Workers []int
	// Timeout bounds each measurement.
	Timeout time.Duration
	// Settings describes the server settings for the report, such as "fsync=on".
	Settings string
}

// Measurement is the outcome of one run.
type Measurement struct {
	Name       string
	Workers    int
	Tasks      int
	Elapsed    time.Duration
	Throughput float64 // tasks per second
	P50, P99   time.Duration
}

// Run measures the baseline and the pipeline for each worker count and writes a report to out.
func Run(ctx context.Context, cfg Config, out io.Writer) ([]Measurement, error) {
	fmt.Fprintf(out, "settings: tasks=%d clients=%d concurrency=%d prefetch=%d %s\n\n",
		cfg.Tasks, cfg.Clients, cfg.Concurrency, cfg.Prefetch, cfg.Settings)
	var all []Measurement
	for _, workers := range cfg.Workers {
		base, err := runBaseline(ctx, cfg, workers)
		if err != nil {
			return all, fmt.Errorf("baseline with %d consumers: %w", workers, err)
		}
		pipe, err := runPipeline(ctx, cfg, workers)
		if err != nil {
			return all, fmt.Errorf("pipeline with %d workers: %w", workers, err)
		}
		all = append(all, base, pipe)
		fmt.Fprintf(out, "%-9s workers=%d  %8.0f tasks/s  p50 %-9s p99 %-9s (%d tasks in %s)\n",
			base.Name, workers, base.Throughput, round(base.P50), round(base.P99), base.Tasks, round(base.Elapsed))
		fmt.Fprintf(out, "%-9s workers=%d  %8.0f tasks/s  p50 %-9s p99 %-9s (%d tasks in %s)\n",
			pipe.Name, workers, pipe.Throughput, round(pipe.P50), round(pipe.P99), pipe.Tasks, round(pipe.Elapsed))
		fmt.Fprintf(out, "ratio     workers=%d  %8.0f%% of the baseline's throughput\n\n", workers, 100*pipe.Throughput/base.Throughput)
	}
	return all, nil
}

func round(d time.Duration) time.Duration {
	switch {
	case d > time.Second:
		return d.Round(10 * time.Millisecond)
	case d > time.Millisecond:
		return d.Round(10 * time.Microsecond)
	default:
		return d.Round(time.Microsecond)
	}
}

// summarize computes throughput and percentiles.
func summarize(name string, workers int, elapsed time.Duration, latencies []time.Duration) Measurement {
	slices.Sort(latencies)
	return Measurement{
		Name: name, Workers: workers, Tasks: len(latencies), Elapsed: elapsed,
		Throughput: float64(len(latencies)) / elapsed.Seconds(),
		P50:        percentile(latencies, 0.50),
		P99:        percentile(latencies, 0.99),
	}
}

// percentile returns the nearest-rank percentile of sorted values.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(rank, 0)]
}

// querier is the part of a pgx connection or pool that readTimings uses.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// readTimings runs query, which selects a start and an end time per task, and returns each
// task's latency and the latest end.
func readTimings(ctx context.Context, db querier, query string) ([]time.Duration, time.Time, error) {
	rows, err := db.Query(ctx, query)
	if err != nil {
		return nil, time.Time{}, err
	}
	var latencies []time.Duration
	var last, start, end time.Time
	_, err = pgx.ForEachRow(rows, []any{&start, &end}, func() error {
		latencies = append(latencies, end.Sub(start))
		if end.After(last) {
			last = end
		}
		return nil
	})
	return latencies, last, err
}

// checkpoint asks PostgreSQL to flush its dirty pages, so that each measurement starts in the same
// state: after a checkpoint, the first change to each page writes the whole page to the WAL. It
// needs superuser rights, which the servers of scripts/bench grant; elsewhere it is skipped.
func checkpoint(ctx context.Context, url string) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return
	}
	defer conn.Close(ctx)
	_, _ = conn.Exec(ctx, "CHECKPOINT")
}

// freshDatabase creates an empty database on the server of url and returns its URL and a function
// that drops it.
func freshDatabase(ctx context.Context, url string) (string, func(), error) {
	admin, err := pgx.Connect(ctx, url)
	if err != nil {
		return "", nil, fmt.Errorf("connect: %w", err)
	}
	defer admin.Close(ctx)
	name := "bench_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:12]
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", nil, fmt.Errorf("create database: %w", err)
	}
	drop := func() {
		conn, err := pgx.Connect(context.Background(), url)
		if err != nil {
			return
		}
		defer conn.Close(context.Background())
		_, _ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	}
	u, err := neturl.Parse(url)
	if err != nil {
		drop()
		return "", nil, errors.New("parse database URL")
	}
	u.Path = "/" + name
	return u.String(), drop, nil
}
