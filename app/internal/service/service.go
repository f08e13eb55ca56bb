// Package service holds the start-up steps that the api, the worker and the monitor share:
// reading settings, building the logger, handling signals, and opening PostgreSQL.
package service

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/taskflow-dev/taskflow/app/internal/envconfig"
	"github.com/taskflow-dev/taskflow/app/internal/logging"
	"github.com/taskflow-dev/taskflow/app/internal/store"
)

// Main reads the settings of the service called name from the environment, builds its JSON
// logger at the level logLevel returns, and calls run with a context that ends on SIGINT or
// SIGTERM. It exits with status 2 for a bad setting and 1 when run returns an error.
func Main[C any](name string, load func(*envconfig.Reader) (C, error), logLevel func(C) string,
	run func(context.Context, C, *slog.Logger) error) {
	cfg, err := load(envconfig.FromEnv())
	if err != nil {
		// One line per bad setting, each with the service's name.
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintf(os.Stderr, "%s: %s\n", name, line)
		}
		os.Exit(2)
	}
	log, err := logging.New(os.Stderr, logLevel(cfg), name)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = run(ctx, cfg, log)
	stop()
	if err != nil {
		log.Error(name+" stopped", "err", err)
		os.Exit(1)
	}
}

// OpenStore connects to the database at url with at most maxConns connections and applies the
// migrations. Every service migrates, so any of them may start first on an empty database. The
// caller closes the store.
func OpenStore(ctx context.Context, url string, maxConns int) (*store.Store, error) {
	st, err := store.Open(ctx, url, maxConns)
	if err != nil {
		return nil, err
	}
	if err := st.Migrate(ctx); err != nil {
		st.Close()
		return nil, err
	}
	return st, nil
}

// Metrics returns a Prometheus registry with the Go runtime and process collectors.
func Metrics() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}
