package e2e_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/taskflow-dev/taskflow/app/internal/stack"
	"github.com/taskflow-dev/taskflow/app/internal/task"
	"github.com/taskflow-dev/taskflow/app/internal/testenv"
)

// workerProcess is the worker binary running as a child process.
type workerProcess struct {
	cmd *exec.Cmd
	log *bytes.Buffer
}

// startWorkerProcess runs the worker binary with the given extra environment.
func startWorkerProcess(t *testing.T, databaseURL, amqpURL, name string, env ...string) *workerProcess {
	t.Helper()
	bin := testenv.Binary(t, "./app/cmd/worker")
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(),
		"DATABASE_URL="+databaseURL, "RABBITMQ_URL="+amqpURL, "HTTP_ADDR=127.0.0.1:0",
		"WORKER_NAME="+name, "WORKER_CONCURRENCY=1", "RETRY_BASE_DELAY=50ms", "RETRY_MAX_DELAY=500ms",
		"LOG_LEVEL=debug")
	cmd.Env = append(cmd.Env, env...)
	wp := &workerProcess{cmd: cmd, log: &bytes.Buffer{}}
	cmd.Stdout, cmd.Stderr = wp.log, wp.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		if t.Failed() {
			t.Logf("log of worker %s:\n%s", name, wp.log)
		}
	})
	return wp
}

func (wp *workerProcess) kill(t *testing.T) {
	t.Helper()
	if err := wp.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = wp.cmd.Wait()
}

// waitStartedBy waits until the task's current attempt runs on the named worker.
func waitStartedBy(t *testing.T, s *stack.Stack, id, worker string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		stored, err := s.Store.Task(context.Background(), mustUUID(t, id))
		if err != nil {
			t.Fatal(err)
		}
		if stored.State == task.Started && stored.Worker == worker {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("task %s is %s on %q after %s, want STARTED on %s", id, stored.State, stored.Worker, timeout, worker)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestKilledWorkerTaskSucceedsOnce(t *testing.T) {
	t.Parallel()
	databaseURL, amqpURL := testenv.Database(t), testenv.RabbitMQ(t)
	s, err := stack.Start(context.Background(), stack.Config{
		DatabaseURL: databaseURL, RabbitMQURL: amqpURL, Registry: (&testTasks{}).registry(), Worker: fastWorker(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)

	victim := startWorkerProcess(t, databaseURL, amqpURL, "victim")
	id := submit(t, s, `{"task":"sleep","args":{"ms":1500}}`).ID
	waitStartedBy(t, s, id, "victim", 30*time.Second)
	victim.kill(t)

	startWorkerProcess(t, databaseURL, amqpURL, "survivor")
	got := waitFor(t, s, id, 60*time.Second, task.Success, task.Failure)
	if got.State != task.Success {
		t.Fatalf("state = %s error %q, want SUCCESS", got.State, deref(got.Error))
	}
	if diff := cmp.Diff(jsonValue(t, `{"slept_ms":1500}`), jsonValue(t, string(got.Result))); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}

	attempts, err := s.Store.Attempts(context.Background(), mustUUID(t, id))
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		Worker string
		State  task.State
	}
	var rows []row
	for _, a := range attempts {
		rows = append(rows, row{a.Worker, a.State})
	}
	want := []row{{"victim", task.Failure}, {"survivor", task.Success}}
	if diff := cmp.Diff(want, rows); diff != "" {
		t.Errorf("attempts (-want +got):\n%s", diff)
	}
}

func TestDeliveryLimitMovesTaskToPoisonQueue(t *testing.T) {
	t.Parallel()
	databaseURL, amqpURL := testenv.Database(t), testenv.RabbitMQ(t)
	s, err := stack.Start(context.Background(), stack.Config{
		DatabaseURL: databaseURL, RabbitMQURL: amqpURL, Registry: (&testTasks{}).registry(), Worker: fastWorker(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)

	// With a delivery limit of 1, the first redelivery after a crash is the last one.
	victim := startWorkerProcess(t, databaseURL, amqpURL, "victim", "DELIVERY_LIMIT=1")
	id := submit(t, s, `{"task":"sleep","args":{"ms":5000}}`).ID
	waitStartedBy(t, s, id, "victim", 30*time.Second)
	victim.kill(t)
	startWorkerProcess(t, databaseURL, amqpURL, "next", "DELIVERY_LIMIT=1")

	got := waitFor(t, s, id, 30*time.Second, task.Failure, task.Success)
	if got.State != task.Failure {
		t.Fatalf("state = %s, want FAILURE", got.State)
	}
	if !strings.Contains(deref(got.Error), "delivered 2 times without finishing") {
		t.Errorf("error = %q, want the delivery-limit reason", deref(got.Error))
	}
	if got.Attempts != 1 {
		t.Errorf("attempts = %d, want 1: a poison message is not run again", got.Attempts)
	}
	dead := getMessage(t, amqpURL, "tasks.poison", 10*time.Second)
	if dead.MessageId != id || dead.Headers["x-taskflow-reason"] != "delivery_limit" {
		t.Errorf("poison message id %s reason %v, want %s delivery_limit", dead.MessageId, dead.Headers["x-taskflow-reason"], id)
	}
}

func TestBrokerOutageDuringSubmitLosesNothing(t *testing.T) {
	t.Parallel()
	broker := testenv.StartRabbitMQ(t)
	s, err := stack.Start(context.Background(), stack.Config{
		DatabaseURL: testenv.Database(t), RabbitMQURL: broker.RabbitMQURL,
		Registry: (&testTasks{}).registry(), Workers: 1, Worker: fastWorker(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	warm := submit(t, s, `{"task":"fib","args":{"n":1}}`).ID
	waitFor(t, s, warm, 30*time.Second, task.Success)

	if err := broker.Stop("rabbitmq"); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for n := range 50 {
		ids = append(ids, submit(t, s, fmt.Sprintf(`{"task":"fib","args":{"n":%d}}`, n)).ID)
	}
	ready := request(t, http.MethodGet, s.URL+"/api/readyz", "")
	if ready.status != http.StatusOK || !strings.Contains(string(ready.body), `"status":"degraded"`) {
		t.Errorf("readyz during the outage = %d %s, want 200 with status degraded", ready.status, ready.body)
	}

	if err := broker.Start("rabbitmq"); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if got := waitFor(t, s, id, 90*time.Second, task.Success, task.Failure); got.State != task.Success {
			t.Errorf("task %s = %s, want SUCCESS", id, got.State)
		}
	}
}

func TestDatabaseRestartLosesNothing(t *testing.T) {
	t.Parallel()
	db := testenv.StartPostgres(t)
	s, err := stack.Start(context.Background(), stack.Config{
		DatabaseURL: db.DatabaseURL, RabbitMQURL: testenv.RabbitMQ(t),
		Registry: (&testTasks{}).registry(), Workers: 2, Worker: fastWorker(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)

	var ids []string
	for range 20 {
		ids = append(ids, submit(t, s, `{"task":"sleep","args":{"ms":300}}`).ID)
	}
	waitFor(t, s, ids[0], 30*time.Second, task.Started, task.Success)
	if err := db.Kill("postgres"); err != nil {
		t.Fatal(err)
	}
	// Submits fail cleanly while the database is down.
	resp := request(t, http.MethodPost, s.URL+"/api/tasks", `{"task":"fib","args":{"n":3}}`)
	if resp.status != http.StatusServiceUnavailable {
		t.Errorf("submit during the outage = %d %s, want 503", resp.status, resp.body)
	}
	time.Sleep(time.Second) // let the workers hit the outage with tasks in hand
	if err := db.Start("postgres"); err != nil {
		t.Fatal(err)
	}

	for _, id := range ids {
		if got := waitFor(t, s, id, 60*time.Second, task.Success, task.Failure); got.State != task.Success {
			t.Errorf("task %s = %s, want SUCCESS", id, got.State)
		}
	}
}

func TestDrainTimeoutRequeuesUnfinishedTasks(t *testing.T) {
	t.Parallel()
	cfg := fastWorker()
	cfg.DrainTimeout = 200 * time.Millisecond
	s, err := stack.Start(context.Background(), stack.Config{
		DatabaseURL: testenv.Database(t), RabbitMQURL: testenv.RabbitMQ(t),
		Registry: (&testTasks{}).registry(), Workers: 1, Worker: cfg,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)

	id := submit(t, s, `{"task":"sleep","args":{"ms":1500}}`).ID
	waitFor(t, s, id, 20*time.Second, task.Started)
	s.StopWorkers()
	if got := getTask(t, s, id); got.State.Terminal() {
		t.Fatalf("task finished as %s although the drain timed out", got.State)
	}
	if err := s.StartWorkers(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	got := waitFor(t, s, id, 30*time.Second, task.Success, task.Failure)
	if got.State != task.Success || got.Attempts != 2 {
		t.Errorf("task = %s with %d attempts, want SUCCESS with 2", got.State, got.Attempts)
	}
}

func TestConcurrentSubmitsAllComplete(t *testing.T) {
	t.Parallel()
	s, _ := startStack(t, 2, &testTasks{})
	const clients, perClient = 8, 25
	ids := make(chan string, clients*perClient)
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			for i := range perClient {
				ids <- submit(t, s, fmt.Sprintf(`{"task":"fib","args":{"n":%d}}`, c*perClient+i)).ID
			}
		})
	}
	wg.Wait()
	close(ids)
	for id := range ids {
		if got := waitFor(t, s, id, 60*time.Second, task.Success, task.Failure); got.State != task.Success || got.Attempts != 1 {
			t.Errorf("task %s = %s with %d attempts, want SUCCESS with 1", id, got.State, got.Attempts)
		}
	}
}

func TestDeletedQueueIsDeclaredAgain(t *testing.T) {
	t.Parallel()
	s, amqpURL := startStack(t, 1, &testTasks{})
	first := submit(t, s, `{"task":"fib","args":{"n":2}}`).ID
	waitFor(t, s, first, 20*time.Second, task.Success)

	// An operator deletes the work queue: RabbitMQ cancels the consumer, and the worker declares
	// the topology again when it reconnects. Meanwhile the relay keeps unroutable tasks.
	conn, err := amqp.Dial(amqpURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDelete("tasks", false, false, false); err != nil {
		t.Fatal(err)
	}
	second := submit(t, s, `{"task":"fib","args":{"n":3}}`).ID
	if got := waitFor(t, s, second, 30*time.Second, task.Success, task.Failure); got.State != task.Success {
		t.Errorf("task after the queue was deleted = %s, want SUCCESS", got.State)
	}
}
