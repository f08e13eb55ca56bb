// Package monitor is the operator dashboard: server-rendered HTML pages, a JSON API, live updates
// over Server-Sent Events, operator actions and Prometheus metrics, all under one URL prefix so
// that it works behind an ingress without path rewriting.
//
// The monitor keeps no state that it cannot rebuild:
//   - task history and per-minute statistics are read from PostgreSQL on demand;
//   - queue depths, consumers and rates come from the RabbitMQ management API;
//   - the worker list is an in-memory cache fed by worker events. A restarted monitor shows every
//     live worker again after one heartbeat interval.
//
// Live updates: the events consumer feeds the worker Registry, and Run refreshes a Snapshot of
// queues, task counts and charts every RefreshInterval. Both changes are rendered once into HTML
// fragments and broadcast to every open event stream, whose page swaps them in.
//
// Actions change PostgreSQL first and then tell the workers, so a worker that misses a command
// still finds the state when it starts or reconnects:
//   - retry a task: store Requeue, which also writes the outbox row that the api's relay publishes;
//   - requeue dead letters: Requeue each message's task, then acknowledge the message, so a crash
//     in between leaves a leftover dead letter but never loses a task;
//   - revoke: store Revoke, then a revoke command;
//   - pause and resume: the paused flag in PostgreSQL, then a pause or resume command;
//   - purge: a queue purge over AMQP.
//
// Every action needs the admin token. Read-only tokens see everything and change nothing.
package monitor
