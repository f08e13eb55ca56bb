// Command bench measures end-to-end throughput and latency of the pipeline against a raw
// RabbitMQ+PostgreSQL baseline on the servers named by DATABASE_URL and RABBITMQ_URL. It is what
// `make bench` runs; see docs/benchmarks.md for results.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/taskflow-dev/taskflow/app/internal/bench"
	"github.com/taskflow-dev/taskflow/app/internal/envconfig"
)

func main() {
	tasks := flag.Int("tasks", 10000, "tasks per measurement")
	clients := flag.Int("clients", 32, "concurrent HTTP clients (pipeline) or publishers (baseline)")
	concurrency := flag.Int("concurrency", 16, "task slots per worker and goroutines per baseline consumer")
	prefetch := flag.Int("prefetch", 0, "prefetch per worker and per baseline consumer (default: concurrency)")
	workers := flag.String("workers", "1,2", "comma-separated worker counts to measure")
	timeout := flag.Duration("timeout", 5*time.Minute, "limit for each measurement")
	flag.Parse()

	env := envconfig.FromEnv()
	cfg := bench.Config{
		DatabaseURL: env.URL("DATABASE_URL", "postgres", "postgresql"),
		RabbitMQURL: env.URL("RABBITMQ_URL", "amqp", "amqps"),
		Settings:    env.String("PG_SETTINGS", "postgres settings unknown"),
		Tasks:       *tasks, Clients: *clients, Concurrency: *concurrency, Prefetch: *prefetch,
		Timeout: *timeout,
	}
	if cfg.Prefetch == 0 {
		cfg.Prefetch = cfg.Concurrency
	}
	for _, w := range strings.Split(*workers, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(w))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "bench: -workers %q: use positive integers separated by commas\n", *workers)
			os.Exit(2)
		}
		cfg.Workers = append(cfg.Workers, n)
	}
	if err := env.Err(); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if _, err := bench.Run(ctx, cfg, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}
