// Command registry serves an OCI distribution registry on a loopback address
// for the local cluster harness, so that image builds can push and the
// cluster can reference what they pushed without reaching any other host.
//
// It uses go-containerregistry's pkg/registry. Manifests stay in memory and
// are lost when the process exits. Blobs are kept in memory too, unless
// -blob-dir names a directory for them.
//
// Usage:
//
//	registry -addr 127.0.0.1:0 -addr-file DIR/registry.addr -blob-dir DIR/blobs
//
// The process stops on SIGINT or SIGTERM. It waits up to 5 s for requests in
// flight to finish and then closes the connections still open.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
)

// shutdownTimeout bounds how long a stop waits for requests in flight.
const shutdownTimeout = 5 * time.Second

// config is the set of command-line settings.
type config struct {
	// addr is the host:port to listen on. The host must be a loopback IP
	// address, and port 0 picks a free port.
	addr string
	// addrFile, if set, receives the address actually listened on, written
	// once the listener is open so that a script can wait for the file.
	addrFile string
	// blobDir, if set, stores blobs on disk instead of in memory.
	blobDir string
}

func main() {
	logger := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if err := run(ctx, logger, os.Args[1:]); err != nil {
		logger.ErrorContext(ctx, "registry failed", slog.Any("err", err))
		os.Exit(1)
	}
}

// run parses args, listens and serves until ctx is done.
func run(ctx context.Context, logger *slog.Logger, args []string) error {
	cfg, err := parseFlags(args)
	if err != nil {
		return err
	}

	listener, err := listen(cfg.addr)
	if err != nil {
		return err
	}
	addr := listener.Addr().String()
	if cfg.addrFile != "" {
		if err := writeFileAtomic(cfg.addrFile, addr+"\n"); err != nil {
			listener.Close()
			return err
		}
	}
	logger.InfoContext(ctx, "registry listening", slog.String("addr", addr), slog.String("blob_dir", cfg.blobDir))

	return serve(ctx, logger, listener, cfg.blobDir)
}

func parseFlags(args []string) (config, error) {
	var cfg config
	flags := flag.NewFlagSet("registry", flag.ContinueOnError)
	flags.StringVar(&cfg.addr, "addr", "127.0.0.1:0", "`host:port` to listen on; the host must be a loopback IP address and port 0 picks a free port")
	flags.StringVar(&cfg.addrFile, "addr-file", "", "`file` to write the listening host:port to once the listener is open")
	flags.StringVar(&cfg.blobDir, "blob-dir", "", "`directory` for blobs; empty keeps blobs in memory")
	if err := flags.Parse(args); err != nil {
		return config{}, err
	}
	if flags.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments %q: registry takes flags only", flags.Args())
	}
	return cfg, nil
}

// listen opens a TCP listener on addr and rejects any host that is not a
// loopback IP address, because the registry has no authentication.
func listen(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("parse listen address %q: %w", addr, err)
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("listen address %q: host must be a loopback IP address such as 127.0.0.1", addr)
	}
	listener, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return listener, nil
}

// serve serves the registry on listener until ctx is done, then shuts the
// server down, closing the connections still open after shutdownTimeout. It
// closes listener.
func serve(ctx context.Context, logger *slog.Logger, listener net.Listener, blobDir string) error {
	options := []registry.Option{
		registry.Logger(slog.NewLogLogger(logger.Handler(), slog.LevelDebug)),
	}
	if blobDir != "" {
		if err := os.MkdirAll(blobDir, 0o755); err != nil {
			listener.Close()
			return fmt.Errorf("create blob directory: %w", err)
		}
		options = append(options, registry.WithBlobHandler(registry.NewDiskBlobHandler(blobDir)))
	}

	// Blob uploads can take long, so there is no write timeout. The header
	// timeout still drops clients that never finish a request.
	server := &http.Server{
		Handler:           registry.New(options...),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       60 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}

	served := make(chan error, 1)
	go func() { served <- server.Serve(listener) }()

	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}

	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := server.Shutdown(shutdownCtx); err != nil {
		// Shutdown also waits for connections that a client opened but sent
		// no request on, for up to 5 s each (net/http, Go 1.26). Such
		// connections and requests still running are cut here, because the
		// registry keeps nothing that a cut request would corrupt.
		logger.WarnContext(ctx, "registry shutdown timed out: closing open connections",
			slog.Duration("duration", shutdownTimeout), slog.Any("err", err))
		if err := server.Close(); err != nil {
			return fmt.Errorf("close server: %w", err)
		}
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	logger.InfoContext(ctx, "registry stopped")
	return nil
}

// writeFileAtomic writes data to a temporary file beside path and renames it,
// so a reader that polls for path never sees a partial address.
func writeFileAtomic(path, data string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(data), 0o644); err != nil {
		return fmt.Errorf("write address file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write address file: %w", err)
	}
	return nil
}
