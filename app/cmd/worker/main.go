// Command worker consumes tasks from RabbitMQ, runs them and stores their results in PostgreSQL.
// Settings come from the environment; see README.md.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/taskflow-dev/taskflow/app/internal/backoff"
	"github.com/taskflow-dev/taskflow/app/internal/broker"
	"github.com/taskflow-dev/taskflow/app/internal/builtin"
	"github.com/taskflow-dev/taskflow/app/internal/envconfig"
	"github.com/taskflow-dev/taskflow/app/internal/logging"
	"github.com/taskflow-dev/taskflow/app/internal/service"
	"github.com/taskflow-dev/taskflow/app/internal/task"
	"github.com/taskflow-dev/taskflow/app/internal/worker"
)

// config is everything the worker reads from the environment.
type config struct {
	HTTPAddr    string
	DatabaseURL logging.SecretURL
	RabbitMQURL logging.SecretURL
	DBMaxConns  int
	LogLevel    string
	Worker      worker.Config
}

func loadConfig(env *envconfig.Reader) (config, error) {
	hostname, _ := os.Hostname()
	concurrency := env.Int("WORKER_CONCURRENCY", 8, 1, 1000)
	c := config{
		HTTPAddr:    env.Addr("HTTP_ADDR", ":9000"),
		DatabaseURL: logging.SecretURL(env.URL("DATABASE_URL", "postgres", "postgresql")),
		RabbitMQURL: logging.SecretURL(env.URL("RABBITMQ_URL", "amqp", "amqps")),
		LogLevel:    env.OneOf("LOG_LEVEL", "info", "debug", "info", "warn", "error"),
		Worker: worker.Config{
			Name:         env.String("WORKER_NAME", hostname),
			Queue:        env.String("TASK_QUEUE", "tasks"),
			Concurrency:  concurrency,
			Prefetch:     env.Int("WORKER_PREFETCH", concurrency, concurrency, 10000),
			DrainTimeout: env.Duration("WORKER_DRAIN_TIMEOUT", 25*time.Second, time.Second, time.Hour),
			Retry: backoff.Policy{
				Base: env.Duration("RETRY_BASE_DELAY", time.Second, 10*time.Millisecond, time.Hour),
				Max:  env.Duration("RETRY_MAX_DELAY", 5*time.Minute, 10*time.Millisecond, 24*time.Hour),
			},
			DeliveryLimit:     env.Int("DELIVERY_LIMIT", 10, 1, 1000),
			HeartbeatInterval: env.Duration("WORKER_HEARTBEAT_INTERVAL", 5*time.Second, 100*time.Millisecond, 10*time.Minute),
			StartedAfter:      env.Duration("WORKER_STARTED_AFTER", 50*time.Millisecond, 0, time.Hour),
		},
	}
	c.DBMaxConns = env.Int("DB_MAX_CONNS", concurrency+4, 2, 1000)
	if c.Worker.StartedAfter == 0 {
		c.Worker.StartedAfter = -1 // 0 asks for every attempt to be marked at once
	}
	if c.Worker.Retry.Max < c.Worker.Retry.Base {
		return c, fmt.Errorf("invalid setting RETRY_MAX_DELAY: %s is shorter than RETRY_BASE_DELAY %s",
			c.Worker.Retry.Max, c.Worker.Retry.Base)
	}
	return c, env.Err()
}

// LogValue lists the settings for the start-up log line, with secrets hidden.
func (c config) LogValue() slog.Value {
	w := c.Worker
	return slog.GroupValue(
		slog.String("http_addr", c.HTTPAddr),
		slog.Any("database_url", c.DatabaseURL),
		slog.Any("rabbitmq_url", c.RabbitMQURL),
		slog.Int("db_max_conns", c.DBMaxConns),
		slog.String("name", w.Name),
		slog.String("queue", w.Queue),
		slog.Int("concurrency", w.Concurrency),
		slog.Int("prefetch", w.Prefetch),
		slog.String("drain_timeout", w.DrainTimeout.String()),
		slog.String("retry_base_delay", w.Retry.Base.String()),
		slog.String("retry_max_delay", w.Retry.Max.String()),
		slog.Int("delivery_limit", w.DeliveryLimit),
		slog.String("heartbeat_interval", w.HeartbeatInterval.String()),
		slog.String("started_after", w.StartedAfter.String()),
	)
}

func main() {
	service.Main("worker", loadConfig, func(c config) string { return c.LogLevel }, run)
}

func run(ctx context.Context, cfg config, log *slog.Logger) error {
	log.InfoContext(ctx, "worker starting", "config", cfg)

	st, err := service.OpenStore(ctx, string(cfg.DatabaseURL), cfg.DBMaxConns)
	if err != nil {
		return err
	}
	defer st.Close()

	conn := broker.NewConn(string(cfg.RabbitMQURL), "taskflow-worker-"+cfg.Worker.Name, log)
	defer conn.Close()
	pub := broker.NewPublisher(conn)
	defer pub.Close()

	registry := task.NewRegistry()
	builtin.Register(registry)
	reg := service.Metrics()
	w := worker.New(cfg.Worker, conn, pub, st, registry, log, reg)

	srv := &http.Server{
		Addr:              cfg.HTTPAddr,
		Handler:           healthMux(w, reg),
		ReadHeaderTimeout: 5 * time.Second,
		WriteTimeout:      30 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	go func() {
		if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
			log.ErrorContext(ctx, "health server stopped", "err", err)
		}
	}()

	// Run returns after the drain; the deferred closes then run in reverse order: publisher,
	// connection, pool.
	err = w.Run(ctx)
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdownCtx)
	log.InfoContext(ctx, "worker stopped")
	return err
}

// healthMux serves /healthz (the process runs), /readyz (a consumer is attached) and /metrics.
func healthMux(w *worker.Worker, gatherer prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	writeStatus := func(rw http.ResponseWriter, code int, status string) {
		rw.Header().Set("Content-Type", "application/json")
		rw.WriteHeader(code)
		_ = json.NewEncoder(rw).Encode(map[string]string{"status": status})
	}
	mux.HandleFunc("GET /healthz", func(rw http.ResponseWriter, _ *http.Request) {
		writeStatus(rw, http.StatusOK, "ok")
	})
	mux.HandleFunc("GET /readyz", func(rw http.ResponseWriter, _ *http.Request) {
		if !w.Consuming() {
			writeStatus(rw, http.StatusServiceUnavailable, "not consuming")
			return
		}
		writeStatus(rw, http.StatusOK, "ok")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	return mux
}
