// Command demo runs the whole pipeline on this machine and submits a sample batch of tasks:
// RabbitMQ and PostgreSQL on loopback, one api, two workers. It is what `make run` starts.
// Ctrl-C stops everything it started.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/taskflow-dev/taskflow/app/internal/demo"
)

func main() {
	once := flag.Bool("once", false, "exit after printing the results instead of waiting for Ctrl-C")
	addr := flag.String("addr", "", "listen address of the api (default 127.0.0.1:5000, or a free port if taken)")
	clean := flag.Bool("clean", false, "stop the demo's servers if they run and delete their data, then exit")
	flag.Parse()

	root, err := demo.FindRoot()
	if err != nil {
		fmt.Fprintf(os.Stderr, "demo: run it from inside the repository: %v\n", err)
		os.Exit(2)
	}
	if *clean {
		if err := demo.Clean(demo.Config{Root: root, Out: os.Stdout}); err != nil {
			fmt.Fprintf(os.Stderr, "demo: %v\n", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err = demo.Run(ctx, demo.Config{Root: root, APIAddr: *addr, Once: *once, Out: os.Stdout})
	if err != nil {
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		os.Exit(1)
	}
}
