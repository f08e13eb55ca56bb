// Package stack runs the api, its outbox relay and any number of workers inside one process, wired
// exactly as the binaries wire them. Integration tests and the benchmark use it; the binaries in
// app/cmd do the same wiring from environment settings.
package stack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/taskflow-dev/taskflow/app/internal/api"
	"github.com/taskflow-dev/taskflow/app/internal/broker"
	"github.com/taskflow-dev/taskflow/app/internal/event"
	"github.com/taskflow-dev/taskflow/app/internal/relay"
	"github.com/taskflow-dev/taskflow/app/internal/store"
	"github.com/taskflow-dev/taskflow/app/internal/task"
	"github.com/taskflow-dev/taskflow/app/internal/worker"
)

// Config describes a stack.
type Config struct {
	DatabaseURL string
	RabbitMQURL string
	Registry    *task.Registry
	// Workers is the number of worker instances, each with its own connections.
	Workers int
	// Worker configures every worker; Name gets a suffix per instance.
	Worker worker.Config
	// API configures the api; Queue defaults to Worker.Queue.
	API   api.Config
	Relay relay.Config
	// DBMaxConns is the pool size of the api and of each worker. Default 20.
	DBMaxConns int
	Log        *slog.Logger
}

// Stack is a running api with its workers. Stop it with Stop.
type Stack struct {
	// URL is the base URL of the api, such as http://127.0.0.1:40123.
	URL   string
	Store *store.Store

	cfg     Config
	log     *slog.Logger
	srv     *http.Server
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	workers []*runningWorker
	started int // workers started so far, for names
	closers []func()
}

type runningWorker struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// Start migrates the database, starts the api on a free loopback port, the relay, and the workers.
func Start(ctx context.Context, cfg Config) (*Stack, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.DBMaxConns == 0 {
		cfg.DBMaxConns = 20
	}
	cfg.Worker = cfg.Worker.WithDefaults()
	if cfg.API.Queue == "" {
		cfg.API.Queue = cfg.Worker.Queue
	}
	if cfg.API.MaxBodyBytes == 0 {
		cfg.API.MaxBodyBytes = api.DefaultMaxBodyBytes
	}

	s := &Stack{cfg: cfg, log: cfg.Log}
	st, err := store.Open(ctx, cfg.DatabaseURL, cfg.DBMaxConns)
	if err != nil {
		return nil, err
	}
	s.Store = st
	s.closers = append(s.closers, st.Close)
	if err := st.Migrate(ctx); err != nil {
		s.Stop()
		return nil, err
	}

	// The api and its relay.
	conn := broker.NewConn(cfg.RabbitMQURL, "taskflow-api", cfg.Log)
	pub := broker.NewPublisher(conn)
	s.closers = append(s.closers, func() { pub.Close(); _ = conn.Close() })
	reg := prometheus.NewRegistry()
	rel := relay.New(cfg.Relay, st, pub, cfg.Log, reg)
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	s.wg.Go(func() { _ = rel.Run(runCtx) })

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.Stop()
		return nil, fmt.Errorf("listen: %w", err)
	}
	s.URL = "http://" + ln.Addr().String()
	s.srv = &http.Server{
		Handler: api.New(cfg.API, api.Deps{Store: st, Registry: cfg.Registry, Broker: conn, Relay: rel,
			Commands: event.NewCommands(conn, pub), Log: cfg.Log, Registerer: reg, Gatherer: reg}),
		ReadHeaderTimeout: 5 * time.Second,
	}
	s.wg.Go(func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			cfg.Log.Error("api server stopped", "err", err)
		}
	})

	if err := s.StartWorkers(ctx, cfg.Workers); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// StartWorkers starts n more workers.
func (s *Stack) StartWorkers(ctx context.Context, n int) error {
	for range n {
		s.started++
		if err := s.startWorker(ctx, s.cfg, s.started); err != nil {
			return err
		}
	}
	return nil
}

func (s *Stack) startWorker(ctx context.Context, cfg Config, number int) error {
	st, err := store.Open(ctx, cfg.DatabaseURL, cfg.DBMaxConns)
	if err != nil {
		return err
	}
	wcfg := cfg.Worker
	wcfg.Name = fmt.Sprintf("%s-%d", wcfg.Name, number)
	conn := broker.NewConn(cfg.RabbitMQURL, "taskflow-"+wcfg.Name, cfg.Log)
	pub := broker.NewPublisher(conn)
	w := worker.New(wcfg, conn, pub, st, cfg.Registry, cfg.Log, prometheus.NewRegistry())

	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	rw := &runningWorker{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(rw.done)
		_ = w.Run(runCtx)
		pub.Close()
		_ = conn.Close()
		st.Close()
	}()
	s.workers = append(s.workers, rw)
	return nil
}

// StopWorkers drains every worker, as SIGTERM does, and waits for them.
func (s *Stack) StopWorkers() {
	for _, w := range s.workers {
		w.cancel()
	}
	for _, w := range s.workers {
		<-w.done
	}
	s.workers = nil
}

// Stop drains the workers, stops the api and the relay, and closes every connection.
func (s *Stack) Stop() {
	s.StopWorkers()
	if s.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = s.srv.Shutdown(ctx)
		cancel()
	}
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
}
