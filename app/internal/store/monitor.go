package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/taskflow-dev/taskflow/app/internal/task"
)

// The read queries in this file serve the monitor. They never change a row.

// TaskQuery selects tasks for SearchTasks. Zero fields do not filter.
type TaskQuery struct {
	// States keeps tasks in any of these states.
	States []task.State
	// Name keeps tasks with this task name.
	Name string
	// SubmittedFrom and SubmittedTo keep tasks submitted in [SubmittedFrom, SubmittedTo). The
	// submit time is the millisecond timestamp inside the UUIDv7 task id, so the bounds are
	// range conditions on the primary key.
	SubmittedFrom time.Time
	SubmittedTo   time.Time
	// Search keeps tasks whose id equals it (a full UUID), whose id starts with it (at least 4
	// hexadecimal digits and dashes), or whose arguments contain it as text, ignoring case.
	Search string
	// Before keeps tasks with a smaller id than the last one of the previous page: it is the
	// cursor of keyset pagination.
	Before uuid.UUID
	// Limit is the page size; it must be positive.
	Limit int
}

// SearchTasks returns the tasks that match q, newest first, and whether more follow the page.
//
// NOTE: an argument text search reads every row that the other filters leave, because no index
// covers the text of args; narrow it with a name, state or time range on a large table.
func (s *Store) SearchTasks(ctx context.Context, q TaskQuery) (tasks []Task, more bool, err error) {
	if q.Limit <= 0 {
		return nil, false, fmt.Errorf("search tasks: limit must be positive, got %d", q.Limit)
	}
	var b whereBuilder
	if len(q.States) > 0 {
		states := make([]string, len(q.States))
		for i, st := range q.States {
			states[i] = string(st)
		}
		b.add("state = ANY(?)", states)
	}
	if q.Name != "" {
		b.add("task = ?", q.Name)
	}
	if !q.SubmittedFrom.IsZero() {
		b.add("id >= ?", uuidV7Floor(q.SubmittedFrom))
	}
	if !q.SubmittedTo.IsZero() {
		b.add("id < ?", uuidV7Floor(q.SubmittedTo))
	}
	if q.Search != "" {
		addSearch(&b, q.Search)
	}
	if q.Before != uuid.Nil {
		b.add("id < ?", q.Before)
	}
	query := `SELECT ` + taskColumns + ` FROM tasks` + b.where() +
		` ORDER BY id DESC LIMIT ` + b.param(q.Limit+1)

	rows, err := s.pool.Query(ctx, query, b.args...)
	if err != nil {
		return nil, false, fmt.Errorf("search tasks: %w", err)
	}
	tasks, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (Task, error) { return scanTask(row) })
	if err != nil {
		return nil, false, fmt.Errorf("search tasks: %w", err)
	}
	if len(tasks) > q.Limit {
		return tasks[:q.Limit], true, nil
	}
	return tasks, false, nil
}

// addSearch adds the condition for TaskQuery.Search.
func addSearch(b *whereBuilder, text string) {
	if id, err := uuid.Parse(text); err == nil {
		b.add("id = ?", id)
		return
	}
	pattern := "%" + escapeLike(text) + "%"
	if isIDPrefix(text) {
		b.add("(id::text LIKE ? OR args::text ILIKE ?)", strings.ToLower(escapeLike(text))+"%", pattern)
		return
	}
	b.add("args::text ILIKE ?", pattern)
}

// isIDPrefix reports whether s can be the start of a UUID's text form and is long enough (4
// characters) to be meant as one.
func isIDPrefix(s string) bool {
	if len(s) < 4 || len(s) > 36 {
		return false
	}
	for _, c := range strings.ToLower(s) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') && c != '-' {
			return false
		}
	}
	return true
}

// escapeLike escapes the LIKE wildcards % and _ and the escape character itself.
func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// uuidV7Floor returns the smallest UUID whose leading 48 bits encode t in Unix milliseconds. Every
// UUIDv7 generated at t or later compares greater or equal, because PostgreSQL orders uuid values
// bytewise.
func uuidV7Floor(t time.Time) uuid.UUID {
	var id uuid.UUID
	var ms [8]byte
	binary.BigEndian.PutUint64(ms[:], uint64(max(t.UnixMilli(), 0)))
	copy(id[:6], ms[2:])
	return id
}

// TaskCount is the number of tasks with one name in one state.
type TaskCount struct {
	Name  string
	State task.State
	Count int64
}

// CountTasks returns the number of tasks by name and state, sorted by name and then state. Pairs
// without tasks are left out.
//
// NOTE: the count reads the whole tasks table; on a table of millions of rows it takes seconds,
// so callers should cache it.
func (s *Store) CountTasks(ctx context.Context) ([]TaskCount, error) {
	rows, err := s.pool.Query(ctx, `SELECT task, state, count(*) FROM tasks GROUP BY task, state ORDER BY task, state`)
	if err != nil {
		return nil, fmt.Errorf("count tasks: %w", err)
	}
	counts, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (TaskCount, error) {
		var c TaskCount
		err := row.Scan(&c.Name, &c.State, &c.Count)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("count tasks: %w", err)
	}
	return counts, nil
}

// MinuteStats describes the tasks of one minute.
type MinuteStats struct {
	// Minute is the start of the minute.
	Minute time.Time
	// Submitted counts tasks submitted in the minute.
	Submitted int64
	// Succeeded and Failed count tasks that reached the state in the minute. Revoked counts
	// running attempts that a revoke stopped; a task revoked before it started has no attempt and
	// shows only in the counts by state.
	Succeeded int64
	Failed    int64
	Revoked   int64
	// LatencyP50 and LatencyP95 are percentiles of the time from submit to SUCCESS of the tasks
	// that succeeded in the minute; zero when none did.
	LatencyP50 time.Duration
	LatencyP95 time.Duration
	// RuntimeP50 and RuntimeP95 are percentiles of the run time of the attempts that ended in the
	// minute, whatever their outcome; zero when none did.
	RuntimeP50 time.Duration
	RuntimeP95 time.Duration
}

// Throughput returns one MinuteStats for each of the last `minutes` minutes, oldest first. The
// last one is the current minute, which is still in progress. minutes must lie in 1..1440.
func (s *Store) Throughput(ctx context.Context, minutes int) ([]MinuteStats, error) {
	if minutes < 1 || minutes > 1440 {
		return nil, fmt.Errorf("read throughput: minutes must lie in 1..1440, got %d", minutes)
	}
	var now time.Time
	if err := s.pool.QueryRow(ctx, `SELECT now()`).Scan(&now); err != nil {
		return nil, fmt.Errorf("read throughput: %w", err)
	}
	start := now.Truncate(time.Minute).Add(-time.Duration(minutes-1) * time.Minute)

	// Each subquery reads only its window through an index: finished_at of the attempts, and the
	// primary key (the UUIDv7 submit time) for submissions. Outcomes are counted from attempts,
	// not from tasks.finished_at, because an index on a column of tasks that every outcome
	// changes would stop those updates from being HOT. A task counts as failed on its last
	// attempt, and as revoked when a revoke stopped a running attempt.
	rows, err := s.pool.Query(ctx, `
		WITH minutes AS (
			SELECT generate_series($1::timestamptz, $2::timestamptz, interval '1 minute') AS minute
		), finished AS (
			SELECT date_bin('1 minute', a.finished_at, $1::timestamptz) AS minute,
				count(*) FILTER (WHERE a.state = 'SUCCESS') AS succeeded,
				count(*) FILTER (WHERE a.state = 'FAILURE' AND t.state = 'FAILURE' AND a.attempt = t.attempts) AS failed,
				count(*) FILTER (WHERE a.state = 'REVOKED') AS revoked,
				percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM a.finished_at - t.created_at))
					FILTER (WHERE a.state = 'SUCCESS') AS latency_p50,
				percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM a.finished_at - t.created_at))
					FILTER (WHERE a.state = 'SUCCESS') AS latency_p95,
				percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM a.finished_at - a.started_at)) AS runtime_p50,
				percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM a.finished_at - a.started_at)) AS runtime_p95
			FROM task_attempts a JOIN tasks t ON t.id = a.task_id
			WHERE a.finished_at >= $1
			GROUP BY 1
		), submitted AS (
			SELECT date_bin('1 minute', created_at, $1::timestamptz) AS minute, count(*) AS submitted
			FROM tasks WHERE id >= $3 AND created_at >= $1
			GROUP BY 1
		)
		SELECT m.minute, coalesce(s.submitted, 0), coalesce(f.succeeded, 0), coalesce(f.failed, 0),
			coalesce(f.revoked, 0), coalesce(f.latency_p50, 0), coalesce(f.latency_p95, 0),
			coalesce(f.runtime_p50, 0), coalesce(f.runtime_p95, 0)
		FROM minutes m
		LEFT JOIN finished f USING (minute)
		LEFT JOIN submitted s USING (minute)
		ORDER BY m.minute`,
		start, now.Truncate(time.Minute), uuidV7Floor(start.Add(-time.Minute)))
	if err != nil {
		return nil, fmt.Errorf("read throughput: %w", err)
	}
	stats, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (MinuteStats, error) {
		var m MinuteStats
		var latency50, latency95, runtime50, runtime95 float64
		err := row.Scan(&m.Minute, &m.Submitted, &m.Succeeded, &m.Failed, &m.Revoked,
			&latency50, &latency95, &runtime50, &runtime95)
		m.LatencyP50, m.LatencyP95 = seconds(latency50), seconds(latency95)
		m.RuntimeP50, m.RuntimeP95 = seconds(runtime50), seconds(runtime95)
		return m, err
	})
	if err != nil {
		return nil, fmt.Errorf("read throughput: %w", err)
	}
	return stats, nil
}

func seconds(s float64) time.Duration {
	return time.Duration(s * float64(time.Second))
}

// OldestWaiting returns the time since which the longest-waiting due task has waited for a
// worker, and false when no task is waiting. A task waits when it is PENDING or RETRY and its ETA
// (countdown or retry delay) has passed. It waits since its ETA, or without one since it was
// submitted or last requeued.
func (s *Store) OldestWaiting(ctx context.Context) (time.Time, bool, error) {
	var since *time.Time
	err := s.pool.QueryRow(ctx, `
		SELECT min(coalesce(eta, updated_at)) FROM tasks
		WHERE state IN ('PENDING', 'RETRY') AND coalesce(eta, updated_at) <= now()`).Scan(&since)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, false, fmt.Errorf("read oldest waiting task: %w", err)
	}
	if since == nil {
		return time.Time{}, false, nil
	}
	return *since, true, nil
}

// whereBuilder collects numbered query parameters and the conditions that use them.
type whereBuilder struct {
	conditions []string
	args       []any
}

// add appends a condition whose ? placeholders all take the values in order.
func (b *whereBuilder) add(condition string, values ...any) {
	for _, v := range values {
		condition = strings.Replace(condition, "?", b.param(v), 1)
	}
	b.conditions = append(b.conditions, condition)
}

// param appends a value and returns its placeholder, such as $3.
func (b *whereBuilder) param(v any) string {
	b.args = append(b.args, v)
	return "$" + strconv.Itoa(len(b.args))
}

func (b *whereBuilder) where() string {
	if len(b.conditions) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(b.conditions, " AND ")
}
