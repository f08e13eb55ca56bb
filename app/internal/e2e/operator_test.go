package e2e_test

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/taskflow-dev/taskflow/app/internal/broker"
	"github.com/taskflow-dev/taskflow/app/internal/event"
	"github.com/taskflow-dev/taskflow/app/internal/stack"
	"github.com/taskflow-dev/taskflow/app/internal/task"
	"github.com/taskflow-dev/taskflow/app/internal/testenv"
)

// commands returns a Commands publisher on amqpURL.
func commands(t *testing.T, amqpURL string) *event.Commands {
	t.Helper()
	conn := broker.NewConn(amqpURL, "test-operator", slog.New(slog.DiscardHandler))
	pub := broker.NewPublisher(conn)
	t.Cleanup(func() { pub.Close(); _ = conn.Close() })
	return event.NewCommands(conn, pub)
}

// pause records the paused state and broadcasts it, as the monitor does.
func pause(t *testing.T, s *stack.Stack, amqpURL string, paused bool) {
	t.Helper()
	ctx := context.Background()
	if err := s.Store.SetQueuePaused(ctx, "tasks", paused); err != nil {
		t.Fatal(err)
	}
	if err := commands(t, amqpURL).Paused(ctx, "tasks", paused); err != nil {
		t.Fatal(err)
	}
}

func TestPauseStopsIntakeAndResumeRestartsIt(t *testing.T) {
	t.Parallel()
	s, amqpURL := startStack(t, 1, &testTasks{})
	running := submit(t, s, `{"task":"sleep","args":{"ms":600}}`).ID
	waitFor(t, s, running, 20*time.Second, task.Started)

	pause(t, s, amqpURL, true)
	waiting := submit(t, s, `{"task":"fib","args":{"n":4}}`).ID
	// The running task finishes; the new one is not taken while paused.
	if got := waitFor(t, s, running, 20*time.Second, task.Success, task.Failure); got.State != task.Success {
		t.Fatalf("running task = %s, want SUCCESS", got.State)
	}
	time.Sleep(time.Second)
	if got := getTask(t, s, waiting); got.State != task.Pending {
		t.Fatalf("task submitted while paused = %s, want PENDING", got.State)
	}

	pause(t, s, amqpURL, false)
	if got := waitFor(t, s, waiting, 20*time.Second, task.Success, task.Failure); got.State != task.Success {
		t.Errorf("task after resume = %s, want SUCCESS", got.State)
	}
}

func TestPausedQueueStaysPausedForNewWorkers(t *testing.T) {
	t.Parallel()
	s, _ := startStack(t, 0, &testTasks{})
	if err := s.Store.SetQueuePaused(context.Background(), "tasks", true); err != nil {
		t.Fatal(err)
	}
	if err := s.StartWorkers(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	id := submit(t, s, `{"task":"fib","args":{"n":4}}`).ID
	time.Sleep(1500 * time.Millisecond)
	if got := getTask(t, s, id); got.State != task.Pending {
		t.Errorf("task on a queue paused before the worker started = %s, want PENDING", got.State)
	}
}

func TestCancelStopsRunningTask(t *testing.T) {
	t.Parallel()
	s, _ := startStack(t, 1, &testTasks{})
	id := submit(t, s, `{"task":"sleep","args":{"ms":60000}}`).ID
	waitFor(t, s, id, 20*time.Second, task.Started)
	if resp := request(t, http.MethodPost, s.URL+"/api/tasks/"+id+"/cancel", ""); resp.status != http.StatusOK {
		t.Fatalf("cancel: %d %s", resp.status, resp.body)
	}

	// The revoke command cancels the handler, so the attempt ends long before the 60s sleep.
	deadline := time.Now().Add(10 * time.Second)
	for {
		attempts, err := s.Store.Attempts(context.Background(), mustUUID(t, id))
		if err != nil {
			t.Fatal(err)
		}
		if len(attempts) == 1 && attempts[0].State == task.Revoked {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("attempts = %+v 10s after cancel, want one REVOKED attempt", attempts)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := getTask(t, s, id); got.State != task.Revoked {
		t.Errorf("task = %s, want REVOKED", got.State)
	}
}

func TestRequeueGivesFailedTaskNewBudget(t *testing.T) {
	t.Parallel()
	s, _ := startStack(t, 1, &testTasks{})
	// Two failures with max_retries 1 exhaust the budget; the third call succeeds.
	id := submit(t, s, `{"task":"flaky","args":{"failures":2},"max_retries":1}`).ID
	if got := waitFor(t, s, id, 30*time.Second, task.Failure, task.Success); got.State != task.Failure || got.Attempts != 2 {
		t.Fatalf("first run = %s with %d attempts, want FAILURE with 2", got.State, got.Attempts)
	}
	if _, err := s.Store.Requeue(context.Background(), mustUUID(t, id)); err != nil {
		t.Fatal(err)
	}
	got := waitFor(t, s, id, 30*time.Second, task.Success, task.Failure)
	if got.State != task.Success || got.Attempts != 3 {
		t.Errorf("after requeue = %s with %d attempts, want SUCCESS with 3", got.State, got.Attempts)
	}
}

func TestWorkerEvents(t *testing.T) {
	t.Parallel()
	amqpURL := testenv.RabbitMQ(t)
	// Subscribe before the worker starts, so worker.online is seen.
	conn, err := amqp.Dial(amqpURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := event.Declare(ch); err != nil {
		t.Fatal(err)
	}
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind(q.Name, "#", event.EventsExchange, false, nil); err != nil {
		t.Fatal(err)
	}
	msgs, err := ch.Consume(q.Name, "", true, true, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}

	s, err := stack.Start(context.Background(), stack.Config{
		DatabaseURL: testenv.Database(t), RabbitMQURL: amqpURL, Registry: (&testTasks{}).registry(),
		Workers: 1, Worker: fastWorker(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	// An attempt longer than StartedAfter (50ms) sends task.started as well as its outcome.
	id := submit(t, s, `{"task":"sleep","args":{"ms":150}}`).ID
	waitFor(t, s, id, 20*time.Second, task.Success)

	var kinds []string
	var succeeded event.Task
	var lastBeat event.Worker
	deadline := time.After(10 * time.Second)
	stopped := false
	for !slices.Contains(kinds, event.WorkerOffline) {
		if !stopped && slices.Contains(kinds, event.WorkerHeartbeat) && slices.Contains(kinds, event.TaskSucceeded) {
			s.StopWorkers()
			stopped = true
		}
		select {
		case d := <-msgs:
			kinds = append(kinds, d.RoutingKey)
			switch d.RoutingKey {
			case event.TaskSucceeded:
				if err := event.Decode(d.Body, &succeeded); err != nil {
					t.Fatal(err)
				}
			case event.WorkerHeartbeat:
				if err := event.Decode(d.Body, &lastBeat); err != nil {
					t.Fatal(err)
				}
			}
		case <-deadline:
			t.Fatalf("no worker.offline within 10s; saw %v", kinds)
		}
	}
	for _, want := range []string{event.WorkerOnline, event.WorkerHeartbeat, event.TaskStarted, event.TaskSucceeded} {
		if !slices.Contains(kinds, want) {
			t.Errorf("events %v lack %s", kinds, want)
		}
	}
	if succeeded.TaskID.String() != id || succeeded.Task != "sleep" || succeeded.Attempt != 1 || succeeded.Worker != "test-1" {
		t.Errorf("task.succeeded = %+v, want task %s sleep attempt 1 on test-1", succeeded, id)
	}
	if succeeded.RuntimeMS < 150 {
		t.Errorf("task.succeeded runtime = %.1fms, want at least the 150ms sleep", succeeded.RuntimeMS)
	}
	if lastBeat.Concurrency != 4 || lastBeat.Queue != "tasks" {
		t.Errorf("heartbeat = %+v, want concurrency 4 on queue tasks", lastBeat)
	}
}
