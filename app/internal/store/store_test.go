package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/taskflow-dev/taskflow/app/internal/store"
	"github.com/taskflow-dev/taskflow/app/internal/task"
	"github.com/taskflow-dev/taskflow/app/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// openStore returns a migrated store on a fresh database.
func openStore(t *testing.T) *store.Store {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, testenv.Database(t), 10)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return st
}

func newTask(name string) store.NewTask {
	id := uuid.Must(uuid.NewV7())
	return store.NewTask{
		ID: id, Name: name, Args: json.RawMessage(`{"n":1}`), MaxRetries: 2,
		Timeout: time.Minute, Queue: "tasks",
	}
}

func mustCreate(t *testing.T, st *store.Store, nt store.NewTask) store.Task {
	t.Helper()
	got, created, err := st.CreateTask(context.Background(), nt)
	if err != nil {
		t.Fatal(err)
	}
	if !created {
		t.Fatalf("CreateTask(%s) returned an existing task", nt.ID)
	}
	return got
}

func TestMigrateConcurrentAndRepeated(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := testenv.Database(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			st, err := store.Open(ctx, url, 2)
			if err != nil {
				errs[i] = err
				return
			}
			defer st.Close()
			errs[i] = st.Migrate(ctx)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("migration %d: %v", i, err)
		}
	}
}

func TestCreateTaskWritesOutbox(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := openStore(t)
	nt := newTask("fib")
	got := mustCreate(t, st, nt)
	if got.State != task.Pending || got.Attempts != 0 || got.Name != "fib" {
		t.Errorf("created task = %+v, want PENDING fib with 0 attempts", got)
	}
	n, err := st.OutboxSize(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("outbox size = %d, want 1", n)
	}
}

func TestCreateTaskIdempotency(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := openStore(t)

	first := newTask("fib")
	first.IdempotencyKey, first.RequestHash = "key-1", []byte("hash-a")
	created := mustCreate(t, st, first)

	again := newTask("fib")
	again.IdempotencyKey, again.RequestHash = "key-1", []byte("hash-a")
	got, isNew, err := st.CreateTask(ctx, again)
	if err != nil {
		t.Fatal(err)
	}
	if isNew || got.ID != created.ID {
		t.Errorf("same key and hash: got id %s new=%v, want id %s new=false", got.ID, isNew, created.ID)
	}

	different := newTask("fib")
	different.IdempotencyKey, different.RequestHash = "key-1", []byte("hash-b")
	if _, _, err := st.CreateTask(ctx, different); !errors.Is(err, store.ErrIdempotencyConflict) {
		t.Errorf("same key, other hash: err = %v, want ErrIdempotencyConflict", err)
	}

	n, err := st.OutboxSize(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("outbox size = %d, want 1: replays must not queue a second message", n)
	}
}

func TestCreateTaskIdempotencyRace(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := openStore(t)
	const clients = 8
	ids := make([]uuid.UUID, clients)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			nt := newTask("fib")
			nt.IdempotencyKey, nt.RequestHash = "race", []byte("same")
			got, _, err := st.CreateTask(ctx, nt)
			if err != nil {
				t.Errorf("client %d: %v", i, err)
				return
			}
			ids[i] = got.ID
		})
	}
	wg.Wait()
	for i, id := range ids {
		if id != ids[0] {
			t.Errorf("client %d got task %s, client 0 got %s", i, id, ids[0])
		}
	}
}

func TestStartAndFinishAppliesOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := openStore(t)
	created := mustCreate(t, st, newTask("fib"))

	claim, err := st.StartAttempt(ctx, created.ID, "w1")
	if err != nil {
		t.Fatal(err)
	}
	if claim.Attempt != 1 || claim.Name != "fib" || claim.MaxRetries != 2 || claim.Timeout != time.Minute {
		t.Errorf("claim = %+v", claim)
	}
	ok := store.Outcome{ID: created.ID, Attempt: 1, State: task.Success, Result: json.RawMessage(`{"v":1}`)}
	applied, err := st.Finish(ctx, ok)
	if err != nil || !applied {
		t.Fatalf("first Finish: applied=%v err=%v, want applied", applied, err)
	}
	ok.Result = json.RawMessage(`{"v":2}`)
	applied, err = st.Finish(ctx, ok)
	if err != nil || applied {
		t.Fatalf("second Finish: applied=%v err=%v, want not applied", applied, err)
	}

	got, err := st.Task(ctx, created.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(`{"v": 1}`, string(got.Result)); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	if got.State != task.Success || got.FinishedAt == nil {
		t.Errorf("task = %s finished_at=%v, want SUCCESS with finished_at", got.State, got.FinishedAt)
	}

	_, err = st.StartAttempt(ctx, created.ID, "w2")
	var notRunnable *store.NotRunnableError
	if !errors.As(err, &notRunnable) || notRunnable.State != task.Success {
		t.Errorf("StartAttempt after success: err = %v, want NotRunnableError with SUCCESS", err)
	}
}

func TestStaleRetryDoesNotOverrideNewerAttempt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := openStore(t)
	created := mustCreate(t, st, newTask("fib"))

	if _, err := st.StartAttempt(ctx, created.ID, "w1"); err != nil {
		t.Fatal(err)
	}
	second, err := st.StartAttempt(ctx, created.ID, "w2")
	if err != nil {
		t.Fatal(err)
	}
	if second.Attempt != 2 {
		t.Fatalf("second attempt number = %d, want 2", second.Attempt)
	}
	applied, err := st.Finish(ctx, store.Outcome{ID: created.ID, Attempt: 1, State: task.Retry,
		Error: "boom", RetryAt: time.Now().Add(time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	if applied {
		t.Error("a RETRY of attempt 1 was applied while attempt 2 runs")
	}

	attempts, err := st.Attempts(ctx, created.ID)
	if err != nil {
		t.Fatal(err)
	}
	var states []task.State
	for _, a := range attempts {
		states = append(states, a.State)
	}
	// Attempt 1 was closed as lost when attempt 2 started, then recorded its own RETRY outcome.
	if diff := cmp.Diff([]task.State{task.Retry, task.Started}, states); diff != "" {
		t.Errorf("attempt states (-want +got):\n%s", diff)
	}
}

func TestRevoke(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := openStore(t)

	countdown := newTask("sleep")
	countdown.ETA = time.Now().Add(time.Hour)
	pending := mustCreate(t, st, countdown)
	got, err := st.Revoke(ctx, pending.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != task.Revoked {
		t.Errorf("state after revoke = %s, want REVOKED", got.State)
	}
	if n, _ := st.OutboxSize(ctx); n != 0 {
		t.Errorf("outbox size after revoking the only task, which had a countdown = %d, want 0", n)
	}
	if _, err := st.Revoke(ctx, pending.ID); err != nil {
		t.Errorf("revoking again: %v, want success", err)
	}
	if _, err := st.StartAttempt(ctx, pending.ID, "w1"); !errors.Is(err, store.ErrNotRunnable) {
		t.Errorf("StartAttempt of revoked task: err = %v, want ErrNotRunnable", err)
	}

	done := mustCreate(t, st, newTask("fib"))
	if _, err := st.StartAttempt(ctx, done.ID, "w1"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Finish(ctx, store.Outcome{ID: done.ID, Attempt: 1, State: task.Success, Result: json.RawMessage(`1`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Revoke(ctx, done.ID); !errors.Is(err, store.ErrFinished) {
		t.Errorf("revoking a finished task: err = %v, want ErrFinished", err)
	}
	if _, err := st.Revoke(ctx, uuid.New()); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("revoking an unknown task: err = %v, want ErrNotFound", err)
	}
}

func TestRevokeWhileRunningDiscardsResult(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := openStore(t)
	created := mustCreate(t, st, newTask("sleep"))
	if _, err := st.StartAttempt(ctx, created.ID, "w1"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Revoke(ctx, created.ID); err != nil {
		t.Fatal(err)
	}
	applied, err := st.Finish(ctx, store.Outcome{ID: created.ID, Attempt: 1, State: task.Success, Result: json.RawMessage(`1`)})
	if err != nil {
		t.Fatal(err)
	}
	if applied {
		t.Error("a result was applied to a revoked task")
	}
	got, err := st.Task(ctx, created.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != task.Revoked || got.Result != nil {
		t.Errorf("task = %s result=%s, want REVOKED without result", got.State, got.Result)
	}
}

func TestListTasksKeysetPagination(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := openStore(t)
	var want []uuid.UUID
	for i := range 7 {
		name := "fib"
		if i%2 == 1 {
			name = "sleep"
		}
		created := mustCreate(t, st, newTask(name))
		if name == "fib" {
			want = append([]uuid.UUID{created.ID}, want...) // newest first
		}
	}

	var got []uuid.UUID
	f := store.Filter{Name: "fib", Limit: 3}
	for page := 0; page < 5; page++ {
		tasks, more, err := st.ListTasks(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		for _, tk := range tasks {
			got = append(got, tk.ID)
		}
		if !more {
			break
		}
		f.Before = tasks[len(tasks)-1].ID
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("listed ids (-want +got):\n%s", diff)
	}

	pending, _, err := st.ListTasks(ctx, store.Filter{State: task.Success, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 0 {
		t.Errorf("SUCCESS filter returned %d tasks, want 0", len(pending))
	}
}

func TestRelayOutboxDeletesOnlyConfirmed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := openStore(t)
	var ids []uuid.UUID
	for range 4 {
		ids = append(ids, mustCreate(t, st, newTask("fib")).ID) // one statement, so one row, each
	}

	// Confirm only the first two rows.
	n, err := st.RelayOutbox(ctx, 10, func(_ context.Context, rows []store.OutboxRow) ([]int64, error) {
		if len(rows) != 4 {
			t.Errorf("publish got %d rows, want 4", len(rows))
		}
		return []int64{rows[0].ID, rows[1].ID}, errors.New("broker went away")
	})
	if err == nil {
		t.Error("RelayOutbox hid the publish error")
	}
	if n != 2 {
		t.Errorf("deleted = %d, want 2", n)
	}

	left := relayed(t, st)
	if diff := cmp.Diff(ids[2:], left); diff != "" {
		t.Errorf("messages offered again (-want +got):\n%s", diff)
	}
	if size, _ := st.OutboxSize(ctx); size != 0 {
		t.Errorf("outbox size = %d, want 0", size)
	}
}

func TestCreateTasksSharesOneOutboxRow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := openStore(t)
	later := newTask("sleep")
	later.ETA = time.Now().Add(time.Hour)
	batch := []store.NewTask{newTask("fib"), newTask("wordstats"), later, newTask("sleep")}
	for _, r := range st.CreateTasks(ctx, batch) {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	if size, _ := st.OutboxSize(ctx); size != 4 {
		t.Errorf("outbox size = %d tasks, want 4", size)
	}

	type message struct {
		ID   uuid.UUID
		Task string
	}
	var rows [][]message
	_, err := st.RelayOutbox(ctx, 10, func(_ context.Context, due []store.OutboxRow) ([]int64, error) {
		var ids []int64
		for _, r := range due {
			var msgs []message
			for _, m := range r.Messages {
				msgs = append(msgs, message{m.ID, m.Task})
			}
			rows = append(rows, msgs)
			ids = append(ids, r.ID)
		}
		return ids, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The three due tasks share a row in submit order; the countdown task waits in its own.
	want := [][]message{{{batch[0].ID, "fib"}, {batch[1].ID, "wordstats"}, {batch[3].ID, "sleep"}}}
	if diff := cmp.Diff(want, rows); diff != "" {
		t.Errorf("published rows (-want +got):\n%s", diff)
	}
	if size, _ := st.OutboxSize(ctx); size != 1 {
		t.Errorf("outbox size after relaying = %d, want the 1 countdown task", size)
	}
}

func TestRelayOutboxHoldsCountdown(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := openStore(t)
	later := newTask("fib")
	later.ETA = time.Now().Add(time.Hour)
	mustCreate(t, st, later)

	n, err := st.RelayOutbox(ctx, 10, func(_ context.Context, rows []store.OutboxRow) ([]int64, error) {
		t.Errorf("a message due in an hour was offered: %+v", rows)
		return nil, nil
	})
	if err != nil || n != 0 {
		t.Errorf("RelayOutbox = %d, %v; want 0, nil", n, err)
	}
	due, ok, err := st.NextOutboxDue(ctx)
	if err != nil || !ok {
		t.Fatalf("NextOutboxDue = %v, %v, %v", due, ok, err)
	}
	if d := time.Until(due); d < 59*time.Minute || d > time.Hour {
		t.Errorf("next due in %s, want about 1h", d)
	}
}

func TestFailUndelivered(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := openStore(t)
	created := mustCreate(t, st, newTask("fib"))
	if _, err := st.StartAttempt(ctx, created.ID, "w1"); err != nil {
		t.Fatal(err)
	}
	if err := st.FailUndelivered(ctx, created.ID, "crashed every time"); err != nil {
		t.Fatal(err)
	}
	got, err := st.Task(ctx, created.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != task.Failure || got.Error != "crashed every time" {
		t.Errorf("task = %s %q, want FAILURE with the reason", got.State, got.Error)
	}
	attempts, err := st.Attempts(ctx, created.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(attempts) != 1 || attempts[0].State != task.Failure || attempts[0].FinishedAt == nil {
		t.Errorf("attempts = %+v, want one closed FAILURE", attempts)
	}
}

func TestCreateTasksBatchWithKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := openStore(t)
	withKey := func(key, hash string) store.NewTask {
		nt := newTask("fib")
		nt.IdempotencyKey, nt.RequestHash = key, []byte(hash)
		return nt
	}
	batch := []store.NewTask{
		newTask("fib"),
		withKey("k1", "a"),
		withKey("k1", "a"), // the same request twice in one batch
		withKey("k1", "b"), // the same key with another request
		newTask("sleep"),
	}
	results := st.CreateTasks(ctx, batch)
	type summary struct {
		New      bool
		Conflict bool
		SameAs1  bool
	}
	var got []summary
	for _, r := range results {
		if r.Err != nil && !errors.Is(r.Err, store.ErrIdempotencyConflict) {
			t.Fatalf("unexpected error: %v", r.Err)
		}
		got = append(got, summary{New: r.New, Conflict: errors.Is(r.Err, store.ErrIdempotencyConflict), SameAs1: r.Task.ID == results[1].Task.ID})
	}
	want := []summary{{New: true}, {New: true, SameAs1: true}, {SameAs1: true}, {Conflict: true}, {New: true}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
	if n, _ := st.OutboxSize(ctx); n != 3 {
		t.Errorf("outbox size = %d, want 3 (one per created task)", n)
	}
}

func TestBatchedLoadMarkAndFinish(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := openStore(t)
	a := mustCreate(t, st, newTask("fib")).ID
	b := mustCreate(t, st, newTask("fib")).ID
	unknown := uuid.New()

	loaded := st.LoadClaims(ctx, []uuid.UUID{a, b, a, unknown})
	var attempts []int
	for _, r := range loaded[:3] {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		attempts = append(attempts, r.Claim.Attempt)
	}
	if diff := cmp.Diff([]int{1, 1, 1}, attempts); diff != "" {
		t.Errorf("attempt numbers (-want +got):\n%s", diff)
	}
	var notRunnable *store.NotRunnableError
	if !errors.As(loaded[3].Err, &notRunnable) || notRunnable.State != "" {
		t.Errorf("unknown id: err = %v, want NotRunnableError without state", loaded[3].Err)
	}

	// Marking the same attempt twice counts it once.
	now := time.Now()
	for _, err := range st.MarkStarted(ctx, []store.StartMark{{ID: a, Attempt: 1, StartedAt: now}, {ID: a, Attempt: 1, StartedAt: now}}, "w1") {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := st.Task(ctx, a); got.State != task.Started || got.Attempts != 1 || got.Worker != "w1" {
		t.Errorf("task a after marking = %s attempts=%d worker=%q, want STARTED 1 w1", got.State, got.Attempts, got.Worker)
	}

	finished := st.FinishMany(ctx, []store.Outcome{
		{ID: a, Attempt: 1, Worker: "w1", State: task.Success, Result: json.RawMessage(`"first"`)},
		{ID: b, Attempt: 1, Worker: "w2", State: task.Retry, Error: "later", RetryAt: now.Add(time.Minute)},
		{ID: a, Attempt: 1, Worker: "w3", State: task.Success, Result: json.RawMessage(`"second"`)},
	})
	var applied []bool
	for _, r := range finished {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		applied = append(applied, r.Applied)
	}
	if diff := cmp.Diff([]bool{true, true, false}, applied); diff != "" {
		t.Errorf("applied (-want +got):\n%s", diff)
	}
	got, err := st.Task(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Result) != `"first"` {
		t.Errorf("result = %s, want the first applied outcome \"first\"", got.Result)
	}
	retrying, err := st.Task(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if retrying.State != task.Retry || retrying.ETA == nil || retrying.Attempts != 1 || retrying.Worker != "w2" {
		t.Errorf("task b = %s eta=%v attempts=%d worker=%q, want RETRY with an eta, 1 attempt, w2",
			retrying.State, retrying.ETA, retrying.Attempts, retrying.Worker)
	}
	// The unmarked attempt of b is recorded by its outcome.
	recorded, err := st.Attempts(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if len(recorded) != 1 || recorded[0].State != task.Retry || recorded[0].Worker != "w2" || recorded[0].FinishedAt == nil {
		t.Errorf("attempts of b = %+v, want one finished RETRY by w2", recorded)
	}
	if next := st.LoadClaims(ctx, []uuid.UUID{b})[0]; next.Err != nil || next.Claim.Attempt != 2 {
		t.Errorf("next claim of b = %+v, want attempt 2", next)
	}
}
