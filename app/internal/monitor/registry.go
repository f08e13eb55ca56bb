package monitor

import (
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/taskflow-dev/taskflow/app/internal/event"
)

// Worker statuses.
const (
	StatusOnline  = "online"
	StatusOffline = "offline"
)

// WorkerInfo is the last known state of one worker, as the pages and the JSON API show it.
type WorkerInfo struct {
	Name        string    `json:"worker"`
	Hostname    string    `json:"hostname"`
	PID         int       `json:"pid"`
	Queue       string    `json:"queue"`
	Status      string    `json:"status"`
	Concurrency int       `json:"concurrency"`
	Active      int       `json:"active"`
	Processed   int64     `json:"processed"`
	Failed      int64     `json:"failed"`
	Paused      []string  `json:"paused"`
	IntervalMS  int64     `json:"interval_ms"`
	LastSeen    time.Time `json:"last_seen"`
	// HeartbeatAge is the time since the last event from the worker, as seen by the monitor.
	HeartbeatAge time.Duration `json:"-"`
	// HeartbeatAgeSeconds is HeartbeatAge for JSON.
	HeartbeatAgeSeconds float64 `json:"heartbeat_age_s"`
	// Load is Active divided by Concurrency, from 0 to 1.
	Load float64 `json:"load"`
}

// Registry is the in-memory list of workers, fed by worker events. A worker shows offline after
// its worker.offline event or when it stays silent past its offline threshold, and leaves the
// list ForgetAfter after its last event. It is safe for concurrent use.
type Registry struct {
	offlineAfter time.Duration
	forgetAfter  time.Duration
	now          func() time.Time

	mu      sync.Mutex
	workers map[string]*workerEntry
	version uint64 // incremented on every change that a page shows
}

type workerEntry struct {
	state     event.Worker
	status    string
	lastSeen  time.Time // monitor clock, so worker clock skew does not matter
	eventTime time.Time // worker clock, to drop events that arrive out of order
}

// NewRegistry returns an empty Registry. now is the clock; nil means time.Now.
func NewRegistry(offlineAfter, forgetAfter time.Duration, now func() time.Time) *Registry {
	if now == nil {
		now = time.Now
	}
	return &Registry{offlineAfter: offlineAfter, forgetAfter: forgetAfter, now: now,
		workers: map[string]*workerEntry{}}
}

// Observe records a worker event. Events of an unknown type, without a worker name, or older than
// the last event seen from the same worker are ignored.
func (r *Registry) Observe(ev event.Worker) {
	if ev.Worker == "" {
		return
	}
	status := StatusOnline
	switch ev.Type {
	case event.WorkerOnline, event.WorkerHeartbeat:
	case event.WorkerOffline:
		status = StatusOffline
	default:
		return
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.workers[ev.Worker]
	if ok && ev.Time.Before(e.eventTime) {
		return
	}
	if !ok {
		e = &workerEntry{}
		r.workers[ev.Worker] = e
	}
	e.state, e.status, e.lastSeen, e.eventTime = ev, status, r.now(), ev.Time
	r.version++
}

// Sweep marks silent workers offline and removes workers silent for ForgetAfter. Call it about
// once a second.
func (r *Registry) Sweep() {
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	for name, e := range r.workers {
		silent := now.Sub(e.lastSeen)
		switch {
		case silent >= r.forgetAfter:
			delete(r.workers, name)
			r.version++
		case e.status == StatusOnline && silent >= r.offlineThreshold(e.state):
			e.status = StatusOffline
			r.version++
		}
	}
}

// offlineThreshold returns how long a worker with this heartbeat interval may stay silent.
func (r *Registry) offlineThreshold(w event.Worker) time.Duration {
	return max(r.offlineAfter, 3*time.Duration(w.IntervalMS)*time.Millisecond)
}

// Version returns a number that changes whenever Workers would return something else apart from
// heartbeat ages, so callers can skip re-rendering an unchanged list.
func (r *Registry) Version() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.version
}

// Workers returns every known worker, online ones first, each group sorted by name.
func (r *Registry) Workers() []WorkerInfo {
	now := r.now()
	r.mu.Lock()
	out := make([]WorkerInfo, 0, len(r.workers))
	for _, e := range r.workers {
		out = append(out, e.info(now))
	}
	r.mu.Unlock()

	slices.SortFunc(out, func(a, b WorkerInfo) int {
		if a.Status != b.Status {
			if a.Status == StatusOnline {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out
}

// Online returns the number of online workers.
func (r *Registry) Online() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.workers {
		if e.status == StatusOnline {
			n++
		}
	}
	return n
}

func (e *workerEntry) info(now time.Time) WorkerInfo {
	s := e.state
	age := now.Sub(e.lastSeen)
	info := WorkerInfo{
		Name: s.Worker, Hostname: s.Hostname, PID: s.PID, Queue: s.Queue, Status: e.status,
		Concurrency: s.Concurrency, Active: s.Active, Processed: s.Processed, Failed: s.Failed,
		Paused: slices.Clone(s.Paused), IntervalMS: s.IntervalMS, LastSeen: e.lastSeen,
		HeartbeatAge: age, HeartbeatAgeSeconds: age.Seconds(),
	}
	if info.Paused == nil {
		info.Paused = []string{}
	}
	if s.Concurrency > 0 {
		info.Load = min(float64(s.Active)/float64(s.Concurrency), 1)
	}
	if e.status == StatusOffline {
		info.Active, info.Load = 0, 0
	}
	return info
}
