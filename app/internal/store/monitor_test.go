package store_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"

	"github.com/taskflow-dev/taskflow/app/internal/store"
	"github.com/taskflow-dev/taskflow/app/internal/task"
)

// uuidAt returns a UUIDv7 whose timestamp is t, with the given low bits to keep ids distinct.
func uuidAt(t time.Time, low uint64) uuid.UUID {
	id := uuid.Must(uuid.NewV7())
	var ms [8]byte
	binary.BigEndian.PutUint64(ms[:], uint64(t.UnixMilli()))
	copy(id[:6], ms[2:])
	binary.BigEndian.PutUint64(id[8:], low|0x8000000000000000)
	return id
}

// finishTask runs one attempt of a created task to the given outcome.
func finishTask(t *testing.T, st *store.Store, id uuid.UUID, state task.State) {
	t.Helper()
	ctx := context.Background()
	claim, err := st.StartAttempt(ctx, id, "w1")
	if err != nil {
		t.Fatal(err)
	}
	o := store.Outcome{ID: id, Attempt: claim.Attempt, State: state}
	switch state {
	case task.Success:
		o.Result = json.RawMessage(`{"ok":true}`)
	case task.Retry:
		o.Error, o.RetryAt = "try again", time.Now().Add(-time.Second)
	default:
		o.Error = "broken"
	}
	if applied, err := st.Finish(ctx, o); err != nil || !applied {
		t.Fatalf("Finish(%s, %s) = %v, %v", id, state, applied, err)
	}
}

func ids(tasks []store.Task) []uuid.UUID {
	out := make([]uuid.UUID, len(tasks))
	for i, t := range tasks {
		out[i] = t.ID
	}
	return out
}

func TestSearchTasksFilters(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	ctx := context.Background()
	base := time.Now().Add(-time.Hour).Truncate(time.Second)

	// Five tasks submitted a minute apart, oldest first.
	specs := []struct {
		name  string
		args  string
		state task.State
	}{
		{"fib", `{"n": 10}`, task.Success},
		{"fib", `{"n": 20}`, task.Failure},
		{"wordstats", `{"text": "Hello 100% World_x"}`, task.Pending},
		{"sleep", `{"ms": 5}`, task.Retry},
		{"wordstats", `{"text": "hello again"}`, task.Success},
	}
	var created []uuid.UUID
	for i, s := range specs {
		nt := newTask(s.name)
		nt.ID = uuidAt(base.Add(time.Duration(i)*time.Minute), uint64(i))
		nt.Args = json.RawMessage(s.args)
		mustCreate(t, st, nt)
		if s.state != task.Pending {
			finishTask(t, st, nt.ID, s.state)
		}
		created = append(created, nt.ID)
	}
	newest := func(indexes ...int) []uuid.UUID {
		out := make([]uuid.UUID, len(indexes))
		for i, idx := range indexes {
			out[i] = created[idx]
		}
		return out
	}

	cases := []struct {
		name  string
		query store.TaskQuery
		want  []uuid.UUID
	}{
		{"all newest first", store.TaskQuery{}, newest(4, 3, 2, 1, 0)},
		{"one state", store.TaskQuery{States: []task.State{task.Success}}, newest(4, 0)},
		{"two states", store.TaskQuery{States: []task.State{task.Pending, task.Retry}}, newest(3, 2)},
		{"name", store.TaskQuery{Name: "fib"}, newest(1, 0)},
		{"name and state", store.TaskQuery{Name: "fib", States: []task.State{task.Failure}}, newest(1)},
		{"submitted from", store.TaskQuery{SubmittedFrom: base.Add(3 * time.Minute)}, newest(4, 3)},
		{"submitted window", store.TaskQuery{SubmittedFrom: base.Add(time.Minute), SubmittedTo: base.Add(3 * time.Minute)}, newest(2, 1)},
		{"full id", store.TaskQuery{Search: created[2].String()}, newest(2)},
		{"id prefix", store.TaskQuery{Search: created[3].String()[:23]}, newest(3)},
		{"argument text ignores case", store.TaskQuery{Search: "HELLO"}, newest(4, 2)},
		{"percent sign is literal", store.TaskQuery{Search: "100%"}, newest(2)},
		{"underscore is literal", store.TaskQuery{Search: "d_x"}, newest(2)},
		{"underscore is no wildcard", store.TaskQuery{Search: "o_W"}, nil},
		{"no match", store.TaskQuery{Search: "nothing like this"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.query.Limit = 50
			got, more, err := st.SearchTasks(ctx, c.query)
			if err != nil {
				t.Fatal(err)
			}
			if more {
				t.Error("more = true, want false")
			}
			if diff := cmp.Diff(c.want, ids(got), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("ids (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSearchTasksKeysetPages(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	ctx := context.Background()
	var want []uuid.UUID
	for range 7 {
		want = append([]uuid.UUID{mustCreate(t, st, newTask("fib")).ID}, want...)
	}

	var got []uuid.UUID
	q := store.TaskQuery{Name: "fib", Limit: 3}
	for page := 0; ; page++ {
		if page > 5 {
			t.Fatal("pagination did not end after 5 pages")
		}
		tasks, more, err := st.SearchTasks(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ids(tasks)...)
		if !more {
			break
		}
		q.Before = tasks[len(tasks)-1].ID
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ids over all pages (-want +got):\n%s", diff)
	}
}

func TestSearchTasksRejectsZeroLimit(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	if _, _, err := st.SearchTasks(context.Background(), store.TaskQuery{}); err == nil {
		t.Fatal("SearchTasks with limit 0 succeeded, want an error")
	}
}

func TestCountTasks(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	for _, s := range []struct {
		name  string
		state task.State
	}{
		{"fib", task.Success}, {"fib", task.Success}, {"fib", task.Failure},
		{"sleep", task.Pending}, {"wordstats", task.Retry},
	} {
		created := mustCreate(t, st, newTask(s.name))
		if s.state != task.Pending {
			finishTask(t, st, created.ID, s.state)
		}
	}

	got, err := st.CountTasks(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []store.TaskCount{
		{Name: "fib", State: task.Failure, Count: 1},
		{Name: "fib", State: task.Success, Count: 2},
		{Name: "sleep", State: task.Pending, Count: 1},
		{Name: "wordstats", State: task.Retry, Count: 1},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("CountTasks (-want +got):\n%s", diff)
	}
}

func TestThroughputCountsCurrentMinute(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	ctx := context.Background()
	for _, state := range []task.State{task.Success, task.Success, task.Failure, task.Pending} {
		created := mustCreate(t, st, newTask("fib"))
		if state != task.Pending {
			finishTask(t, st, created.ID, state)
		}
	}
	// A revoke counts when it stops a running attempt; the pending task revoked here does not.
	running := mustCreate(t, st, newTask("fib"))
	claim, err := st.StartAttempt(ctx, running.ID, "w1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Revoke(ctx, running.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Finish(ctx, store.Outcome{ID: running.ID, Attempt: claim.Attempt, State: task.Revoked, Error: "revoked while running"}); err != nil {
		t.Fatal(err)
	}
	pending := mustCreate(t, st, newTask("fib"))
	if _, err := st.Revoke(ctx, pending.ID); err != nil {
		t.Fatal(err)
	}

	stats, err := st.Throughput(ctx, 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(stats) != 5 {
		t.Fatalf("got %d minutes, want 5", len(stats))
	}
	for i := 1; i < len(stats); i++ {
		if step := stats[i].Minute.Sub(stats[i-1].Minute); step != time.Minute {
			t.Errorf("minute %d starts %s after the previous one, want 1m", i, step)
		}
	}

	// The tasks may straddle a minute boundary, so the last two minutes are added up.
	var sum store.MinuteStats
	for _, m := range stats[3:] {
		sum.Submitted += m.Submitted
		sum.Succeeded += m.Succeeded
		sum.Failed += m.Failed
		sum.Revoked += m.Revoked
	}
	want := store.MinuteStats{Submitted: 6, Succeeded: 2, Failed: 1, Revoked: 1}
	if diff := cmp.Diff(want, sum); diff != "" {
		t.Errorf("counts of the last two minutes (-want +got):\n%s", diff)
	}
	last := stats[len(stats)-1]
	if last.Succeeded > 0 && (last.LatencyP50 <= 0 || last.LatencyP95 < last.LatencyP50) {
		t.Errorf("latency p50 %s, p95 %s: want 0 < p50 <= p95", last.LatencyP50, last.LatencyP95)
	}
	if last.Succeeded > 0 && last.RuntimeP50 <= 0 {
		t.Errorf("runtime p50 = %s, want > 0", last.RuntimeP50)
	}
	if stats[0].Submitted+stats[0].Succeeded != 0 {
		t.Errorf("oldest minute = %+v, want no tasks", stats[0])
	}
}

func TestThroughputRejectsBadWindow(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	for _, minutes := range []int{0, 1441} {
		if _, err := st.Throughput(context.Background(), minutes); err == nil {
			t.Errorf("Throughput(%d) succeeded, want an error", minutes)
		}
	}
}

func TestOldestWaiting(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	ctx := context.Background()

	if _, ok, err := st.OldestWaiting(ctx); err != nil || ok {
		t.Fatalf("empty table: ok = %v, err = %v; want false, nil", ok, err)
	}

	// A countdown in the future does not wait yet, and a finished task never waits.
	later := newTask("fib")
	later.ETA = time.Now().Add(time.Hour)
	mustCreate(t, st, later)
	done := mustCreate(t, st, newTask("fib"))
	finishTask(t, st, done.ID, task.Success)
	if _, ok, err := st.OldestWaiting(ctx); err != nil || ok {
		t.Fatalf("only future and finished tasks: ok = %v, err = %v; want false, nil", ok, err)
	}

	before := time.Now().Add(-time.Second)
	first := mustCreate(t, st, newTask("fib"))
	mustCreate(t, st, newTask("fib"))
	since, ok, err := st.OldestWaiting(ctx)
	if err != nil || !ok {
		t.Fatalf("ok = %v, err = %v; want true, nil", ok, err)
	}
	if since.Before(before) || since.After(first.CreatedAt.Add(time.Second)) {
		t.Errorf("waiting since %s, want about %s (the first pending task's submit time)", since, first.CreatedAt)
	}
}
