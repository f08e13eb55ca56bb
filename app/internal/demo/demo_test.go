package demo_test

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/taskflow-dev/taskflow/app/internal/demo"
)

// TestRunOnce runs what `make run` runs, with its own servers, and checks the printed results.
func TestRunOnce(t *testing.T) {
	root, err := demo.FindRoot()
	if err != nil {
		t.Fatal(err)
	}
	services, err := os.MkdirTemp("", "taskflow-demo-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(services) })

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var out bytes.Buffer
	err = demo.Run(ctx, demo.Config{
		Root: root, StateDir: t.TempDir(), ServicesDir: services, APIAddr: "127.0.0.1:0", Once: true, Out: &out,
	})
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		`fib n=100\s+SUCCESS\s+1\s+\{"n":100,"value":"354224848179261915075"\}`,
		`wordstats\s+SUCCESS`,
		`csvstats\s+SUCCESS`,
		`csvstats, malformed\s+FAILURE\s+1\s+error: line 3, column "amount": "lots" is not a number`,
		`chord: sum of fib 10, 20, 30\s+SUCCESS\s+4 in 4 tasks\s+\{"count":3,"value":"838860"\}`,
		`tasks\s+http://127\.0\.0\.1:\d+/api/tasks`,
		`monitor\s+http://127\.0\.0\.1:\d+/flower/ \(sign in with any user name and the admin token [0-9a-f]{32}\)`,
		`stopping RabbitMQ and PostgreSQL`,
	} {
		if !regexp.MustCompile(want).MatchString(out.String()) {
			t.Errorf("output lacks %s:\n%s", want, out.String())
		}
	}
}
