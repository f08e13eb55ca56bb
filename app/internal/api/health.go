package api

import (
	"context"
	"net/http"
)

// healthz handles GET /api/healthz: the process is up and serving.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) error {
	s.writeJSON(w, r, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

// readiness is the body of GET /api/readyz.
type readiness struct {
	// Status is "ok", "degraded" (RabbitMQ unreachable: tasks are still accepted into the outbox)
	// or "unavailable" (PostgreSQL unreachable: no task can be accepted).
	Status   string `json:"status"`
	Postgres string `json:"postgres"`
	RabbitMQ string `json:"rabbitmq"`
	// Outbox is the number of accepted tasks not yet confirmed by RabbitMQ, -1 when unknown.
	Outbox int `json:"outbox"`
}

// readyz handles GET /api/readyz. It answers 503 only when PostgreSQL is unreachable. While
// RabbitMQ is down it answers 200 with status "degraded": the API still accepts tasks, because the
// outbox keeps them until the broker is back, so taking the pod out of its Service would refuse
// work that can be accepted safely.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), checkTimeout)
	defer cancel()

	// Both checks run at once, so the answer comes within the longer of the two timeouts.
	brokerErr := make(chan error, 1)
	go func() { brokerErr <- s.broker.Check() }()

	resp := readiness{Status: "ok", Postgres: "ok", RabbitMQ: "ok", Outbox: -1}
	status := http.StatusOK
	if err := s.store.Ping(ctx); err != nil {
		s.log.WarnContext(ctx, "readiness: database unreachable", "err", err)
		resp.Postgres, resp.Status, status = "unreachable", "unavailable", http.StatusServiceUnavailable
	} else if n, err := s.store.OutboxSize(ctx); err == nil {
		resp.Outbox = n
	}
	if err := <-brokerErr; err != nil {
		s.log.WarnContext(ctx, "readiness: broker unreachable", "err", err)
		resp.RabbitMQ = "unreachable"
		if status == http.StatusOK {
			resp.Status = "degraded"
		}
	}
	s.writeJSON(w, r, status, resp)
	return nil
}
