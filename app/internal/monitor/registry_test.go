package monitor

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/taskflow-dev/taskflow/app/internal/event"
)

// fakeClock is a settable clock for registry tests.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func heartbeat(name string, at time.Time) event.Worker {
	return event.Worker{Type: event.WorkerHeartbeat, Worker: name, Concurrency: 4, Active: 1,
		IntervalMS: 1000, Time: at}
}

// statuses returns worker name to status.
func statuses(r *Registry) map[string]string {
	out := map[string]string{}
	for _, w := range r.Workers() {
		out[w.Name] = w.Status
	}
	return out
}

func TestRegistryOfflineAndForget(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	r := NewRegistry(15*time.Second, time.Minute, clock.Now)

	r.Observe(heartbeat("w1", clock.Now()))
	r.Observe(heartbeat("w2", clock.Now()))
	clock.Advance(10 * time.Second)
	r.Observe(heartbeat("w2", clock.Now()))

	steps := []struct {
		name    string
		advance time.Duration
		want    map[string]string
	}{
		{"both online before the threshold", 4 * time.Second, map[string]string{"w1": StatusOnline, "w2": StatusOnline}},
		{"silent worker goes offline", 2 * time.Second, map[string]string{"w1": StatusOffline, "w2": StatusOnline}},
		{"second worker goes offline later", 10 * time.Second, map[string]string{"w1": StatusOffline, "w2": StatusOffline}},
		{"first worker is forgotten", 34 * time.Second, map[string]string{"w2": StatusOffline}},
		{"second worker is forgotten", 10 * time.Second, map[string]string{}},
	}
	for _, s := range steps {
		clock.Advance(s.advance)
		r.Sweep()
		if diff := cmp.Diff(s.want, statuses(r)); diff != "" {
			t.Errorf("%s: statuses (-want +got):\n%s", s.name, diff)
		}
	}
}

func TestRegistryOfflineEventAndReturn(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	r := NewRegistry(15*time.Second, time.Minute, clock.Now)

	r.Observe(heartbeat("w1", clock.Now()))
	offline := heartbeat("w1", clock.Now().Add(time.Second))
	offline.Type = event.WorkerOffline
	r.Observe(offline)
	if got := statuses(r)["w1"]; got != StatusOffline {
		t.Fatalf("after worker.offline: status = %q, want offline", got)
	}
	if got := r.Workers()[0].Active; got != 0 {
		t.Errorf("offline worker active = %d, want 0", got)
	}

	// An event from before the offline event arrives late and is ignored.
	r.Observe(heartbeat("w1", clock.Now()))
	if got := statuses(r)["w1"]; got != StatusOffline {
		t.Errorf("after a late heartbeat: status = %q, want offline", got)
	}

	// A restarted worker with the same name comes back.
	clock.Advance(5 * time.Second)
	r.Observe(event.Worker{Type: event.WorkerOnline, Worker: "w1", Time: clock.Now()})
	if got := statuses(r)["w1"]; got != StatusOnline {
		t.Errorf("after worker.online: status = %q, want online", got)
	}
}

func TestRegistryScaleThreeToZeroToThree(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	r := NewRegistry(15*time.Second, 5*time.Minute, clock.Now)
	start := func(names ...string) {
		for _, n := range names {
			r.Observe(event.Worker{Type: event.WorkerOnline, Worker: n, Time: clock.Now()})
		}
	}
	stop := func(names ...string) {
		for _, n := range names {
			r.Observe(event.Worker{Type: event.WorkerOffline, Worker: n, Time: clock.Now()})
		}
	}

	start("a", "b", "c")
	if got := r.Online(); got != 3 {
		t.Fatalf("online after start = %d, want 3", got)
	}
	clock.Advance(time.Second)
	stop("a", "b", "c")
	if got := r.Online(); got != 0 {
		t.Fatalf("online after stop = %d, want 0", got)
	}
	clock.Advance(time.Second)
	start("d", "e", "f")
	r.Sweep()
	if got := r.Online(); got != 3 {
		t.Errorf("online after scaling back = %d, want 3", got)
	}
	if got := len(r.Workers()); got != 6 {
		t.Errorf("listed workers = %d, want 6 until the stopped ones are forgotten", got)
	}
}

func TestRegistryUsesLongHeartbeatInterval(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	r := NewRegistry(15*time.Second, time.Hour, clock.Now)
	slow := heartbeat("slow", clock.Now())
	slow.IntervalMS = 10_000 // three intervals are 30s, above the 15s threshold
	r.Observe(slow)

	clock.Advance(20 * time.Second)
	r.Sweep()
	if got := statuses(r)["slow"]; got != StatusOnline {
		t.Errorf("after 20s: status = %q, want online", got)
	}
	clock.Advance(11 * time.Second)
	r.Sweep()
	if got := statuses(r)["slow"]; got != StatusOffline {
		t.Errorf("after 31s: status = %q, want offline", got)
	}
}

func TestRegistryIgnoresInvalidEvents(t *testing.T) {
	t.Parallel()
	r := NewRegistry(time.Second, time.Minute, nil)
	r.Observe(event.Worker{Type: event.WorkerHeartbeat})
	r.Observe(event.Worker{Type: "worker.unknown", Worker: "w"})
	if got := len(r.Workers()); got != 0 {
		t.Errorf("workers = %d, want 0", got)
	}
}

func TestRegistryWorkerInfo(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	r := NewRegistry(15*time.Second, time.Minute, clock.Now)
	for i := range 3 {
		r.Observe(event.Worker{Type: event.WorkerHeartbeat, Worker: fmt.Sprintf("w%d", 3-i), Hostname: "host",
			PID: 42, Queue: "tasks", Concurrency: 8, Active: 6, Processed: 10, Failed: 2,
			Paused: []string{"tasks"}, IntervalMS: 5000, Time: clock.Now()})
	}
	clock.Advance(2 * time.Second)

	got := r.Workers()
	if diff := cmp.Diff([]string{"w1", "w2", "w3"}, []string{got[0].Name, got[1].Name, got[2].Name}); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
	want := WorkerInfo{Name: "w1", Hostname: "host", PID: 42, Queue: "tasks", Status: StatusOnline,
		Concurrency: 8, Active: 6, Processed: 10, Failed: 2, Paused: []string{"tasks"}, IntervalMS: 5000,
		LastSeen: time.Unix(1_700_000_000, 0), HeartbeatAge: 2 * time.Second, HeartbeatAgeSeconds: 2, Load: 0.75}
	if diff := cmp.Diff(want, got[0]); diff != "" {
		t.Errorf("worker info (-want +got):\n%s", diff)
	}
}
