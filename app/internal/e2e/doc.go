// Package e2e holds end-to-end tests: the api, the outbox relay and workers run against real
// RabbitMQ and PostgreSQL servers, and the tests act as HTTP clients. Chaos tests kill workers and
// stop the broker or the database in the middle of the work.
package e2e
