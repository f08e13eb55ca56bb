package monitor

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// streamKeepAlive is the period of comment lines that keep idle streams open through proxies.
const streamKeepAlive = 15 * time.Second

// stream handles GET api/events, a Server-Sent Events stream. Event types:
//   - workers, queues, stats: an HTML fragment that replaces the element with that id;
//   - task: a task event from a worker, as JSON.
//
// A new stream first receives the latest fragment of each type. The stream ends when the client
// goes away or the monitor stops.
func (m *Monitor) stream(w http.ResponseWriter, r *http.Request) error {
	events, unsubscribe, err := m.hub.subscribe()
	if errors.Is(err, errTooManyStreams) {
		return &requestError{status: http.StatusServiceUnavailable,
			msg: fmt.Sprintf("the monitor serves at most %d live streams; close other tabs or retry later", m.cfg.MaxStreams)}
	}
	defer unsubscribe()

	rc := http.NewResponseController(w)
	// The server's write timeout would cut a stream that lives for hours.
	if err := rc.SetWriteDeadline(time.Time{}); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return fmt.Errorf("clear write deadline of event stream: %w", err)
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // ask nginx-based ingresses not to buffer the stream
	w.WriteHeader(http.StatusOK)
	if _, err := io.WriteString(w, "retry: 3000\n\n"); err != nil {
		return nil
	}
	if err := rc.Flush(); err != nil {
		return nil
	}

	keepAlive := time.NewTicker(streamKeepAlive)
	defer keepAlive.Stop()
	for {
		var err error
		select {
		case <-r.Context().Done():
			return nil
		case <-m.stopping:
			return nil
		case <-keepAlive.C:
			_, err = io.WriteString(w, ": keep-alive\n\n")
		case ev := <-events:
			_, err = io.WriteString(w, formatEvent(ev))
		}
		if err == nil {
			err = rc.Flush()
		}
		if err != nil {
			return nil // the client went away
		}
	}
}

// formatEvent encodes ev in the text/event-stream format, one data field per line.
func formatEvent(ev streamEvent) string {
	var b strings.Builder
	b.WriteString("event: ")
	b.WriteString(ev.Name)
	b.WriteByte('\n')
	for line := range strings.SplitSeq(strings.ReplaceAll(ev.Data, "\r\n", "\n"), "\n") {
		b.WriteString("data: ")
		b.WriteString(strings.TrimSuffix(line, "\r"))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	return b.String()
}
