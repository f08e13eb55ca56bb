package monitor

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestFormatEvent(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		ev   streamEvent
		want string
	}{
		{"one line", streamEvent{Name: "task", Data: `{"a":1}`}, "event: task\ndata: {\"a\":1}\n\n"},
		{"lines become data fields", streamEvent{Name: "workers", Data: "<p>\nx\n</p>"}, "event: workers\ndata: <p>\ndata: x\ndata: </p>\n\n"},
		{"carriage returns dropped", streamEvent{Name: "stats", Data: "a\r\nb\r"}, "event: stats\ndata: a\ndata: b\n\n"},
		{"empty data", streamEvent{Name: "queues"}, "event: queues\ndata: \n\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(c.want, formatEvent(c.ev)); diff != "" {
				t.Errorf("formatEvent (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHubReplaysLatestAndLimitsStreams(t *testing.T) {
	t.Parallel()
	h := newHub(2)
	h.publish(streamEvent{Name: "workers", Data: "old"}, true)
	h.publish(streamEvent{Name: "workers", Data: "new"}, true)
	h.publish(streamEvent{Name: "task", Data: "not remembered"}, false)

	first, closeFirst, err := h.subscribe()
	if err != nil {
		t.Fatal(err)
	}
	if got := <-first; got.Data != "new" {
		t.Errorf("replayed event = %q, want the latest, %q", got.Data, "new")
	}
	select {
	case ev := <-first:
		t.Errorf("unexpected second replayed event %+v", ev)
	default:
	}

	_, closeSecond, err := h.subscribe()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.subscribe(); !errors.Is(err, errTooManyStreams) {
		t.Errorf("third subscribe: err = %v, want errTooManyStreams", err)
	}
	closeSecond()
	if got := h.open(); got != 1 {
		t.Errorf("open streams = %d, want 1", got)
	}

	// A stream that does not read misses events instead of blocking the publisher.
	for i := range streamBuffer + 10 {
		h.publish(streamEvent{Name: "task", Data: string(rune('a' + i%26))}, false)
	}
	if got := len(first); got != streamBuffer {
		t.Errorf("buffered events = %d, want %d", got, streamBuffer)
	}
	closeFirst()
	if got := h.open(); got != 0 {
		t.Errorf("open streams = %d, want 0", got)
	}
}
