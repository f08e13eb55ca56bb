package broker

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestRetryDelays(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		base, max time.Duration
		want      []time.Duration
	}{
		{"one second to eight", time.Second, 8 * time.Second, []time.Duration{
			1000 * time.Millisecond, 1414 * time.Millisecond, 2000 * time.Millisecond, 2828 * time.Millisecond,
			4000 * time.Millisecond, 5657 * time.Millisecond, 8000 * time.Millisecond}},
		{"max below base", time.Second, time.Millisecond, []time.Duration{time.Second}},
		{"tiny base drops duplicates after rounding", time.Millisecond, 4 * time.Millisecond, []time.Duration{
			1 * time.Millisecond, 2 * time.Millisecond, 3 * time.Millisecond, 4 * time.Millisecond}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(c.want, RetryDelays(c.base, c.max)); diff != "" {
				t.Errorf("RetryDelays(%s, %s) (-want +got):\n%s", c.base, c.max, diff)
			}
		})
	}
}

func TestDelayFor(t *testing.T) {
	t.Parallel()
	topo := Topology{Queue: "tasks", RetryDelays: []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}}
	cases := []struct {
		name string
		in   time.Duration
		want time.Duration
	}{
		{"below the shortest", 10 * time.Millisecond, time.Second},
		{"exact tier", 2 * time.Second, 2 * time.Second},
		{"between tiers rounds down", 3900 * time.Millisecond, 2 * time.Second},
		{"above the longest", time.Hour, 4 * time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if got := topo.DelayFor(c.in); got != c.want {
				t.Errorf("DelayFor(%s) = %s, want %s", c.in, got, c.want)
			}
		})
	}
}

func TestQueueNames(t *testing.T) {
	t.Parallel()
	topo := Topology{Queue: "jobs", RetryDelays: []time.Duration{1500 * time.Millisecond}}
	want := []string{"jobs", "jobs.dlq", "jobs.poison", "jobs.delay.1500ms"}
	if diff := cmp.Diff(want, topo.Queues()); diff != "" {
		t.Errorf("Queues() (-want +got):\n%s", diff)
	}
}

func TestDeadLetterQueuesUnlimitedOnRabbitMQ4(t *testing.T) {
	t.Parallel()
	if got := (Topology{ServerMajor: 3}).unlimited(); got != nil {
		t.Errorf("3.x arguments = %v, want none: 3.x rejects a negative delivery limit", got)
	}
	if got := (Topology{ServerMajor: 4}).unlimited()["x-delivery-limit"]; got != int64(-1) {
		t.Errorf("4.x x-delivery-limit = %v, want -1", got)
	}
}
