// Command monitor serves the operator dashboard: HTML pages, a JSON API, live updates and the
// admin actions under one URL prefix (default /flower). Settings come from the environment; see
// docs/monitor.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/taskflow-dev/taskflow/app/internal/broker"
	"github.com/taskflow-dev/taskflow/app/internal/envconfig"
	"github.com/taskflow-dev/taskflow/app/internal/event"
	"github.com/taskflow-dev/taskflow/app/internal/logging"
	"github.com/taskflow-dev/taskflow/app/internal/monitor"
	"github.com/taskflow-dev/taskflow/app/internal/service"
)

// config is everything the monitor reads from the environment.
type config struct {
	HTTPAddr        string
	DatabaseURL     logging.SecretURL
	RabbitMQURL     logging.SecretURL
	ManagementURL   logging.SecretURL
	DBMaxConns      int
	ShutdownTimeout time.Duration
	LogLevel        string
	Monitor         monitor.Config
}

func loadConfig(env *envconfig.Reader) (config, error) {
	c := config{
		HTTPAddr:        env.Addr("HTTP_ADDR", ":5555"),
		DatabaseURL:     logging.SecretURL(env.URL("DATABASE_URL", "postgres", "postgresql")),
		RabbitMQURL:     logging.SecretURL(env.URL("RABBITMQ_URL", "amqp", "amqps")),
		ManagementURL:   logging.SecretURL(env.URL("RABBITMQ_MANAGEMENT_URL", "http", "https")),
		DBMaxConns:      env.Int("DB_MAX_CONNS", 5, 2, 100),
		ShutdownTimeout: env.Duration("SHUTDOWN_TIMEOUT", 10*time.Second, time.Second, 10*time.Minute),
		LogLevel:        env.OneOf("LOG_LEVEL", "info", "debug", "info", "warn", "error"),
		Monitor: monitor.Config{
			Prefix:          env.String("URL_PREFIX", "/flower"),
			Queue:           env.String("TASK_QUEUE", "tasks"),
			ReadToken:       env.String("MONITOR_READ_TOKEN", ""),
			AdminToken:      env.String("MONITOR_ADMIN_TOKEN", ""),
			AllowOpen:       env.Bool("MONITOR_ALLOW_OPEN", false),
			OfflineAfter:    env.Duration("WORKER_OFFLINE_AFTER", 15*time.Second, time.Second, time.Hour),
			ForgetAfter:     env.Duration("WORKER_FORGET_AFTER", 5*time.Minute, time.Second, 7*24*time.Hour),
			RefreshInterval: env.Duration("MONITOR_REFRESH_INTERVAL", 5*time.Second, 500*time.Millisecond, 10*time.Minute),
			ChartMinutes:    env.Int("MONITOR_CHART_MINUTES", 30, 5, 1440),
			MaxStreams:      env.Int("MONITOR_MAX_STREAMS", 100, 1, 10000),
		},
	}
	if err := env.Err(); err != nil {
		return c, err
	}
	c.Monitor = c.Monitor.WithDefaults()
	if err := c.Monitor.Validate(); err != nil {
		return c, fmt.Errorf("invalid monitor settings: %w", err)
	}
	return c, nil
}

// LogValue lists the settings for the start-up log line, with secrets hidden.
func (c config) LogValue() slog.Value {
	m := c.Monitor
	return slog.GroupValue(
		slog.String("http_addr", c.HTTPAddr),
		slog.String("url_prefix", m.Prefix),
		slog.Any("database_url", c.DatabaseURL),
		slog.Any("rabbitmq_url", c.RabbitMQURL),
		slog.Any("rabbitmq_management_url", c.ManagementURL),
		slog.String("queue", m.Queue),
		slog.Bool("read_token_set", m.ReadToken != ""),
		slog.Bool("admin_token_set", m.AdminToken != ""),
		slog.Bool("allow_open", m.AllowOpen),
		slog.String("worker_offline_after", m.OfflineAfter.String()),
		slog.String("worker_forget_after", m.ForgetAfter.String()),
		slog.String("refresh_interval", m.RefreshInterval.String()),
		slog.Int("chart_minutes", m.ChartMinutes),
		slog.Int("db_max_conns", c.DBMaxConns),
	)
}

func main() {
	service.Main("monitor", loadConfig, func(c config) string { return c.LogLevel }, run)
}

func run(ctx context.Context, cfg config, log *slog.Logger) error {
	log.InfoContext(ctx, "monitor starting", "config", cfg)

	// PostgreSQL: the monitor migrates too, so it can start first on an empty database.
	st, err := service.OpenStore(ctx, string(cfg.DatabaseURL), cfg.DBMaxConns)
	if err != nil {
		return err
	}
	defer st.Close()

	// RabbitMQ: connects lazily, so the monitor serves the task history while the broker is down.
	conn := broker.NewConn(string(cfg.RabbitMQURL), "taskflow-monitor", log)
	defer conn.Close()
	pub := broker.NewPublisher(conn)
	defer pub.Close()
	mgmt, err := monitor.NewManagement(string(cfg.ManagementURL), string(cfg.RabbitMQURL))
	if err != nil {
		return fmt.Errorf("invalid setting RABBITMQ_MANAGEMENT_URL: %w", err)
	}

	reg := service.Metrics()
	mon, err := monitor.New(cfg.Monitor, monitor.Deps{
		Store: st, Broker: conn, Queues: mgmt, Commands: event.NewCommands(conn, pub),
		Log: log, Registerer: reg, Gatherer: reg,
	})
	if err != nil {
		return err
	}
	runDone := make(chan struct{})
	go func() {
		defer close(runDone)
		_ = mon.Run(ctx)
	}()

	srv := &http.Server{
		Addr:              cfg.HTTPAddr,
		Handler:           mon,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second, // the event stream clears its own deadline
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.ListenAndServe() }()
	log.InfoContext(ctx, "monitor listening", "addr", cfg.HTTPAddr, "url_prefix", cfg.Monitor.Prefix)

	// Shutdown: Run ends with ctx and closes the event streams, then the server drains.
	select {
	case err := <-serveErr:
		return fmt.Errorf("serve http: %w", err)
	case <-ctx.Done():
	}
	log.InfoContext(ctx, "monitor shutting down", "timeout", cfg.ShutdownTimeout.String())
	<-runDone
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shut down http server: %w", err)
	}
	log.InfoContext(ctx, "monitor stopped")
	return nil
}
