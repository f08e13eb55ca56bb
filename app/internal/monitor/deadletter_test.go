package monitor

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/taskflow-dev/taskflow/app/internal/broker"
)

func TestReadDeadLetter(t *testing.T) {
	t.Parallel()
	published := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	died := time.Date(2024, 5, 1, 13, 0, 0, 0, time.UTC)
	id := "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
	body := []byte(`{"id":"` + id + `","task":"fib"}`)
	cases := []struct {
		name string
		d    amqp.Delivery
		want DeadLetter
	}{
		{"worker headers", amqp.Delivery{Body: body, Timestamp: published, Headers: amqp.Table{
			broker.HeaderReason: broker.ReasonRetriesExhausted, broker.HeaderError: "boom",
			broker.HeaderAttempts: int64(4), "x-delivery-count": int64(2)}},
			DeadLetter{TaskID: id, Task: "fib", Reason: "retries_exhausted", Error: "boom", Attempts: 4,
				PublishedAt: &published, Deliveries: 3}},
		{"rabbitmq x-death only", amqp.Delivery{Body: body, Headers: amqp.Table{
			"x-death": []any{amqp.Table{"queue": "tasks", "reason": "delivery_limit", "time": died}}}},
			DeadLetter{TaskID: id, Task: "fib", Reason: "delivery_limit", From: "tasks", PublishedAt: &died, Deliveries: 1}},
		{"unreadable body", amqp.Delivery{Body: []byte("not json")},
			DeadLetter{Reason: "unknown", Body: "not json", Deliveries: 1}},
		{"binary body", amqp.Delivery{Body: []byte{0xff, 0xfe, 0x00}},
			DeadLetter{Reason: "unknown", Body: "3 bytes of binary data", Deliveries: 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(c.want, readDeadLetter(c.d)); diff != "" {
				t.Errorf("readDeadLetter (-want +got):\n%s", diff)
			}
		})
	}
}
