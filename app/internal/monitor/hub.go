package monitor

import (
	"errors"
	"sync"
)

// streamEvent is one Server-Sent Event: Name is the event type, Data its payload. Data may span
// lines; each line is sent as its own data field.
type streamEvent struct {
	Name string
	Data string
}

// streamBuffer is the number of events a slow stream may fall behind before it misses events.
// Fragments replace each other, so a missed fragment is made good by the next one.
const streamBuffer = 32

// errTooManyStreams is returned by subscribe when MaxStreams streams are open.
var errTooManyStreams = errors.New("too many open event streams")

// hub broadcasts events to every open event stream. It is safe for concurrent use.
type hub struct {
	maxStreams int

	mu      sync.Mutex
	streams map[chan streamEvent]struct{}
	last    map[string]streamEvent // latest event of each type, sent to new streams first
}

func newHub(maxStreams int) *hub {
	return &hub{maxStreams: maxStreams, streams: map[chan streamEvent]struct{}{}, last: map[string]streamEvent{}}
}

// subscribe opens a stream that first receives the latest event of each remembered type. The
// caller must call the returned function to close it.
func (h *hub) subscribe() (<-chan streamEvent, func(), error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.streams) >= h.maxStreams {
		return nil, nil, errTooManyStreams
	}
	ch := make(chan streamEvent, streamBuffer)
	for _, ev := range h.last {
		select {
		case ch <- ev:
		default:
		}
	}
	h.streams[ch] = struct{}{}
	return ch, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		delete(h.streams, ch)
	}, nil
}

// publish sends ev to every stream without blocking: a stream whose buffer is full misses it.
// When remember is true, ev is also kept for streams that open later.
func (h *hub) publish(ev streamEvent, remember bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if remember {
		h.last[ev.Name] = ev
	}
	for ch := range h.streams {
		select {
		case ch <- ev:
		default:
		}
	}
}

// open returns the number of open streams.
func (h *hub) open() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.streams)
}
