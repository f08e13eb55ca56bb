package relay

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/taskflow-dev/taskflow/app/internal/broker"
	"github.com/taskflow-dev/taskflow/app/internal/store"
)

// recordingPublisher confirms every message except those whose task id is in reject, and records
// the size of each call.
type recordingPublisher struct {
	reject map[string]bool
	calls  []int
}

func (p *recordingPublisher) Publish(_ context.Context, msgs ...broker.Message) ([]bool, error) {
	p.calls = append(p.calls, len(msgs))
	confirmed := make([]bool, len(msgs))
	var err error
	for i, m := range msgs {
		confirmed[i] = !p.reject[m.MessageID]
		if !confirmed[i] {
			err = broker.ErrNacked
		}
	}
	return confirmed, err
}

func rowOf(id int64, n int) store.OutboxRow {
	row := store.OutboxRow{ID: id, Queue: "tasks"}
	for range n {
		row.Messages = append(row.Messages, broker.TaskMessage{ID: uuid.New(), Task: "fib"})
	}
	return row
}

func TestPublishConfirmsWholeRowsOnly(t *testing.T) {
	t.Parallel()
	rows := []store.OutboxRow{rowOf(1, 3), rowOf(2, 2), rowOf(3, 1)}
	pub := &recordingPublisher{reject: map[string]bool{rows[1].Messages[1].ID.String(): true}}
	r := New(Config{}, nil, pub, slog.New(slog.DiscardHandler), prometheus.NewRegistry())

	published, err := r.publish(context.Background(), rows)
	if !errors.Is(err, broker.ErrNacked) {
		t.Errorf("err = %v, want ErrNacked", err)
	}
	// Row 2 had one message refused, so all of it stays in the outbox.
	if diff := cmp.Diff([]int64{1, 3}, published); diff != "" {
		t.Errorf("published rows (-want +got):\n%s", diff)
	}
}

func TestPublishSplitsAtMaxBatch(t *testing.T) {
	t.Parallel()
	rows := []store.OutboxRow{rowOf(1, 600), rowOf(2, 600), rowOf(3, 300)}
	pub := &recordingPublisher{}
	r := New(Config{}, nil, pub, slog.New(slog.DiscardHandler), prometheus.NewRegistry())

	published, err := r.publish(context.Background(), rows)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int64{1, 2, 3}, published); diff != "" {
		t.Errorf("published rows (-want +got):\n%s", diff)
	}
	// A row is never split, and no call exceeds broker.MaxBatch messages.
	if diff := cmp.Diff([]int{600, 900}, pub.calls); diff != "" {
		t.Errorf("messages per Publish call (-want +got):\n%s", diff)
	}
}
