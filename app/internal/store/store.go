// Package store keeps tasks, their attempts and the outbox in PostgreSQL, which is the system of
// record: RabbitMQ only carries task ids, and every state change is a conditional UPDATE here.
//
// Durability rules:
//   - a task row and its outbox row are written in one statement, so an accepted task always has
//     either a pending outbox message or has been confirmed by the broker;
//   - a finished result is committed with synchronous_commit as configured (durable by default)
//     before the worker acknowledges the message;
//   - writes whose loss only causes a harmless repeat (marking an attempt STARTED, deleting
//     published outbox rows) commit with synchronous_commit off, which saves a WAL flush each.
package store

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Store is a PostgreSQL connection pool with the task queries. It is safe for concurrent use.
// Close releases the pool.
type Store struct {
	pool *pgxpool.Pool
}

// Open connects to the database at url with at most maxConns connections and checks that it
// answers. It does not migrate; call Migrate once at start.
func Open(ctx context.Context, url string, maxConns int) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx includes the connection string in some parse errors, so it is left out here.
		return nil, errors.New("parse database URL: check the DATABASE_URL format")
	}
	if maxConns > 0 {
		cfg.MaxConns = int32(maxConns)
	}
	cfg.ConnConfig.RuntimeParams["application_name"] = "taskflow"
	// Plan every execution with its actual parameters and the table's current size. A generic
	// plan cached while a table was still small keeps scanning it sequentially after it has grown,
	// which made the id = ANY($1) lookups of the worker cost more with every task.
	cfg.ConnConfig.RuntimeParams["plan_cache_mode"] = "force_custom_plan"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("create database pool: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	return &Store{pool: pool}, nil
}

// Unavailable reports whether err comes from a database (or another server) that cannot be
// reached or does not answer in time, as opposed to a bug: a retry may then succeed.
func Unavailable(err error) bool {
	var netErr net.Error
	var connectErr *pgconn.ConnectError
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &connectErr), errors.As(err, &netErr), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF), pgconn.SafeToRetry(err):
		return true
	case errors.As(err, &pgErr):
		// Class 08 is connection exceptions, 57P is operator intervention such as a shutdown.
		return strings.HasPrefix(pgErr.Code, "08") || strings.HasPrefix(pgErr.Code, "57P")
	}
	return false
}

// deadlockRetries is how many times inTx runs a transaction that PostgreSQL aborted to break a
// deadlock.
const deadlockRetries = 5

// inTx runs f in a transaction and commits it. A transaction that PostgreSQL aborts to break a
// deadlock (SQLSTATE 40P01) runs again, up to deadlockRetries times, so f must not have effects
// outside the transaction. Operator actions use it: they lock many rows of a workflow, in an order
// that can cross the order in which workers' results lock them.
func (s *Store) inTx(ctx context.Context, f func(pgx.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := pgx.BeginFunc(ctx, s.pool, f)
		var pgErr *pgconn.PgError
		if attempt > deadlockRetries || !errors.As(err, &pgErr) || pgErr.Code != "40P01" {
			return err
		}
	}
}

// Close closes every connection of the pool. It waits for connections in use to be released.
func (s *Store) Close() {
	s.pool.Close()
}

// Ping checks that the database answers a query.
func (s *Store) Ping(ctx context.Context) error {
	return s.pool.Ping(ctx)
}

//go:embed migrations/*.sql
var migrations embed.FS

// migrationLockID is the pg_advisory_xact_lock key that serialises migrations between processes
// that start at the same time.
const migrationLockID = 7_300_417_251

// Migrate applies the embedded migrations that the database has not seen, in one transaction,
// under an advisory lock, so any number of api and worker processes may call it concurrently.
func (s *Store) Migrate(ctx context.Context) error {
	files, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return fmt.Errorf("list migrations: %w", err)
	}
	slices.Sort(files)

	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", migrationLockID); err != nil {
			return fmt.Errorf("lock migrations: %w", err)
		}
		_, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version integer PRIMARY KEY,
			applied_at timestamptz NOT NULL DEFAULT now())`)
		if err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		// Each version is applied once, even one numbered below a version already applied, so
		// migrations added on different branches cannot be skipped.
		rows, err := tx.Query(ctx, "SELECT version FROM schema_migrations")
		if err != nil {
			return fmt.Errorf("read schema versions: %w", err)
		}
		applied, err := pgx.CollectRows(rows, pgx.RowTo[int])
		if err != nil {
			return fmt.Errorf("read schema versions: %w", err)
		}
		for _, file := range files {
			version, err := migrationVersion(file)
			if err != nil {
				return err
			}
			if slices.Contains(applied, version) {
				continue
			}
			sql, err := migrations.ReadFile(file)
			if err != nil {
				return fmt.Errorf("read migration %s: %w", file, err)
			}
			if _, err := tx.Exec(ctx, string(sql)); err != nil {
				return fmt.Errorf("apply migration %s: %w", file, err)
			}
			if _, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version) VALUES ($1)", version); err != nil {
				return fmt.Errorf("record migration %s: %w", file, err)
			}
		}
		return nil
	})
}

// migrationVersion parses the leading number of a file name such as "migrations/001_tasks.sql".
func migrationVersion(file string) (int, error) {
	base := strings.TrimPrefix(file, "migrations/")
	prefix, _, ok := strings.Cut(base, "_")
	if !ok {
		return 0, fmt.Errorf("migration %s: name must start with a number and an underscore", file)
	}
	version, err := strconv.Atoi(prefix)
	if err != nil {
		return 0, fmt.Errorf("migration %s: name must start with a number and an underscore", file)
	}
	return version, nil
}
