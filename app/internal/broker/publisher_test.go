package broker_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/taskflow-dev/taskflow/app/internal/broker"
	"github.com/taskflow-dev/taskflow/app/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestPublishConfirmsAndReportsUnroutable(t *testing.T) {
	t.Parallel()
	conn := broker.NewConn(testenv.RabbitMQ(t), "test", slog.New(slog.DiscardHandler))
	t.Cleanup(func() { _ = conn.Close() })
	topo := broker.Topology{Queue: "tasks", DeliveryLimit: 3, RetryDelays: broker.RetryDelays(100*time.Millisecond, 200*time.Millisecond)}
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := topo.Declare(ch); err != nil {
		t.Fatal(err)
	}
	_ = ch.Close()
	// The test servers run Debian's RabbitMQ 3.10.
	if major := conn.ServerMajor(); major != 3 {
		t.Errorf("ServerMajor = %d, want 3", major)
	}

	pub := broker.NewPublisher(conn)
	t.Cleanup(pub.Close)
	msgs := []broker.Message{
		broker.TaskMessage{ID: uuid.New(), Task: "fib"}.Message("tasks"),
		broker.TaskMessage{ID: uuid.New(), Task: "fib"}.Message("no-such-queue"),
		broker.TaskMessage{ID: uuid.New(), Task: "fib"}.Message("tasks"),
	}
	confirmed, err := pub.Publish(context.Background(), msgs...)
	if !errors.Is(err, broker.ErrUnroutable) {
		t.Errorf("err = %v, want ErrUnroutable", err)
	}
	if diff := cmp.Diff([]bool{true, false, true}, confirmed); diff != "" {
		t.Errorf("confirmed (-want +got):\n%s", diff)
	}

	// The channel stays usable after a return.
	confirmed, err = pub.Publish(context.Background(), broker.TaskMessage{ID: uuid.New(), Task: "fib"}.Message("tasks"))
	if err != nil || !confirmed[0] {
		t.Errorf("publish after a return: %v %v", confirmed, err)
	}
}

func TestDelayQueueReturnsMessageToWorkQueue(t *testing.T) {
	t.Parallel()
	url := testenv.RabbitMQ(t)
	conn := broker.NewConn(url, "test", slog.New(slog.DiscardHandler))
	t.Cleanup(func() { _ = conn.Close() })
	topo := broker.Topology{Queue: "tasks", DeliveryLimit: 3, RetryDelays: []time.Duration{300 * time.Millisecond}}
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ch.Close() })
	if err := topo.Declare(ch); err != nil {
		t.Fatal(err)
	}

	pub := broker.NewPublisher(conn)
	t.Cleanup(pub.Close)
	id := uuid.New()
	sent := time.Now()
	if _, err := pub.Publish(context.Background(), broker.TaskMessage{ID: id, Task: "fib"}.Message(topo.DelayQueue(300*time.Millisecond))); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		d, ok, err := ch.Get("tasks", true)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			if waited := time.Since(sent); waited < 300*time.Millisecond {
				t.Errorf("message returned after %s, before its 300ms delay", waited)
			}
			got, err := broker.ParseTaskMessage(d.Body)
			if err != nil || got.ID != id {
				t.Errorf("returned message = %+v, %v; want id %s", got, err, id)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("message did not return from the delay queue within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestCheckReportsUnreachableBroker(t *testing.T) {
	t.Parallel()
	conn := broker.NewConn("amqp://guest:guest@127.0.0.1:1/", "test", slog.New(slog.DiscardHandler))
	if err := conn.Check(); err == nil {
		t.Fatal("Check succeeded against a closed port")
	}
	if _, err := conn.Channel(); err == nil {
		t.Fatal("Channel succeeded against a closed port")
	}
}

func TestCheckGivesUpOnStalledServer(t *testing.T) {
	t.Parallel()
	// A server that accepts connections and never answers the AMQP handshake.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 16)
	var acceptor sync.WaitGroup
	t.Cleanup(func() {
		_ = ln.Close()
		acceptor.Wait()
		close(accepted)
		for c := range accepted {
			_ = c.Close()
		}
	})
	acceptor.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	})

	conn := broker.NewConn("amqp://guest:guest@"+ln.Addr().String()+"/", "test", slog.New(slog.DiscardHandler))
	start := time.Now()
	if err := conn.Check(); err == nil {
		t.Fatal("Check succeeded against a server that never answers")
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("Check took %s, want about 1s so that a readiness probe gets an answer", took)
	}
}
