// Command api is the producer API: it accepts tasks over HTTP, stores them in PostgreSQL with an
// outbox row and relays the outbox to RabbitMQ. Settings come from the environment; see README.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/taskflow-dev/taskflow/app/internal/api"
	"github.com/taskflow-dev/taskflow/app/internal/broker"
	"github.com/taskflow-dev/taskflow/app/internal/builtin"
	"github.com/taskflow-dev/taskflow/app/internal/envconfig"
	"github.com/taskflow-dev/taskflow/app/internal/event"
	"github.com/taskflow-dev/taskflow/app/internal/logging"
	"github.com/taskflow-dev/taskflow/app/internal/relay"
	"github.com/taskflow-dev/taskflow/app/internal/service"
	"github.com/taskflow-dev/taskflow/app/internal/task"
)

// config is everything the api reads from the environment.
type config struct {
	HTTPAddr        string
	DatabaseURL     logging.SecretURL
	RabbitMQURL     logging.SecretURL
	Queue           string
	MaxBodyBytes    int
	MaxRetries      int
	Token           string
	DBMaxConns      int
	RelayBatch      int
	RelayPoll       time.Duration
	ShutdownTimeout time.Duration
	LogLevel        string
}

func loadConfig(env *envconfig.Reader) (config, error) {
	c := config{
		HTTPAddr:        env.Addr("HTTP_ADDR", ":5000"),
		DatabaseURL:     logging.SecretURL(env.URL("DATABASE_URL", "postgres", "postgresql")),
		RabbitMQURL:     logging.SecretURL(env.URL("RABBITMQ_URL", "amqp", "amqps")),
		Queue:           env.String("TASK_QUEUE", "tasks"),
		MaxBodyBytes:    env.Int("MAX_BODY_BYTES", api.DefaultMaxBodyBytes, 1<<10, 64<<20),
		MaxRetries:      env.Int("DEFAULT_MAX_RETRIES", task.DefaultMaxRetries, 0, 100),
		Token:           env.String("API_TOKEN", ""),
		DBMaxConns:      env.Int("DB_MAX_CONNS", 20, 2, 1000),
		RelayBatch:      env.Int("RELAY_BATCH_SIZE", 100, 1, 10000),
		RelayPoll:       env.Duration("RELAY_POLL_INTERVAL", time.Second, 10*time.Millisecond, time.Minute),
		ShutdownTimeout: env.Duration("SHUTDOWN_TIMEOUT", 15*time.Second, time.Second, 10*time.Minute),
		LogLevel:        env.OneOf("LOG_LEVEL", "info", "debug", "info", "warn", "error"),
	}
	return c, env.Err()
}

// LogValue lists the settings for the start-up log line, with secrets hidden.
func (c config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("http_addr", c.HTTPAddr),
		slog.Any("database_url", c.DatabaseURL),
		slog.Any("rabbitmq_url", c.RabbitMQURL),
		slog.String("queue", c.Queue),
		slog.Int("max_body_bytes", c.MaxBodyBytes),
		slog.Int("default_max_retries", c.MaxRetries),
		slog.Bool("token_set", c.Token != ""),
		slog.Int("db_max_conns", c.DBMaxConns),
		slog.Int("relay_batch_size", c.RelayBatch),
		slog.String("relay_poll_interval", c.RelayPoll.String()),
		slog.String("shutdown_timeout", c.ShutdownTimeout.String()),
	)
}

func main() {
	service.Main("api", loadConfig, func(c config) string { return c.LogLevel }, run)
}

func run(ctx context.Context, cfg config, log *slog.Logger) error {
	log.InfoContext(ctx, "api starting", "config", cfg)

	// Database: connect and migrate before serving.
	st, err := service.OpenStore(ctx, string(cfg.DatabaseURL), cfg.DBMaxConns)
	if err != nil {
		return err
	}
	defer st.Close()

	// Broker: connects lazily, so the api starts and accepts tasks while RabbitMQ is down.
	conn := broker.NewConn(string(cfg.RabbitMQURL), "taskflow-api", log)
	defer conn.Close()
	pub := broker.NewPublisher(conn)
	defer pub.Close()

	// Outbox relay.
	reg := service.Metrics()
	rel := relay.New(relay.Config{BatchSize: cfg.RelayBatch, PollInterval: cfg.RelayPoll}, st, pub, log, reg)
	relayCtx, stopRelay := context.WithCancel(context.WithoutCancel(ctx))
	relayDone := make(chan struct{})
	go func() {
		defer close(relayDone)
		_ = rel.Run(relayCtx)
	}()

	// HTTP server.
	registry := task.NewRegistry()
	builtin.Register(registry)
	handler := api.New(api.Config{Queue: cfg.Queue, MaxBodyBytes: int64(cfg.MaxBodyBytes), Token: cfg.Token,
		DefaultMaxRetries: &cfg.MaxRetries},
		api.Deps{Store: st, Registry: registry, Broker: conn, Relay: rel, Commands: event.NewCommands(conn, pub),
			Log: log, Registerer: reg, Gatherer: reg})
	srv := &http.Server{
		Addr:              cfg.HTTPAddr,
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.ListenAndServe() }()
	log.InfoContext(ctx, "api listening", "addr", cfg.HTTPAddr)

	// Shutdown: stop intake, then let the relay publish what it holds, then close connections.
	select {
	case err := <-serveErr:
		stopRelay()
		<-relayDone
		return fmt.Errorf("serve http: %w", err)
	case <-ctx.Done():
	}
	log.InfoContext(ctx, "api shutting down", "timeout", cfg.ShutdownTimeout.String())
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	err = srv.Shutdown(shutdownCtx)
	stopRelay()
	<-relayDone
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shut down http server: %w", err)
	}
	log.InfoContext(ctx, "api stopped")
	return nil
}
