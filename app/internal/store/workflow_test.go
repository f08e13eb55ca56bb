package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/taskflow-dev/taskflow/app/internal/store"
	"github.com/taskflow-dev/taskflow/app/internal/task"
	"github.com/taskflow-dev/taskflow/app/internal/testenv"
)

// chord returns a workflow of n header tasks and a body task that takes their results in args
// field "values".
func chord(n int) (store.NewWorkflow, []uuid.UUID, uuid.UUID) {
	w := store.NewWorkflow{ID: uuid.Must(uuid.NewV7()), Spec: json.RawMessage(`{}`)}
	var header []uuid.UUID
	for range n {
		nt := newTask("fib")
		header = append(header, nt.ID)
		w.Tasks = append(w.Tasks, store.WorkflowTask{NewTask: nt})
	}
	body := newTask("sum")
	body.Args = json.RawMessage(`{}`)
	w.Tasks = append(w.Tasks, store.WorkflowTask{NewTask: body, Pipe: "values", PipeMany: true})
	for i, id := range header {
		w.Edges = append(w.Edges, store.Edge{Parent: id, Child: body.ID, Position: i})
	}
	w.Outputs, w.Many = []uuid.UUID{body.ID}, false
	return w, header, body.ID
}

// relayed publishes the due outbox, confirming every row, and returns the announced task ids.
func relayed(t *testing.T, st *store.Store) []uuid.UUID {
	t.Helper()
	var ids []uuid.UUID
	_, err := st.RelayOutbox(context.Background(), 100, func(_ context.Context, rows []store.OutboxRow) ([]int64, error) {
		var done []int64
		for _, r := range rows {
			for _, m := range r.Messages {
				ids = append(ids, m.ID)
			}
			done = append(done, r.ID)
		}
		return done, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func succeed(t *testing.T, st *store.Store, id uuid.UUID, result string) {
	t.Helper()
	applied, err := st.Finish(context.Background(), store.Outcome{ID: id, Attempt: 1, Worker: "w", State: task.Success, Result: json.RawMessage(result)})
	if err != nil || !applied {
		t.Fatalf("Finish(%s) = %v, %v; want applied", id, applied, err)
	}
}

func TestWorkflowReleasesBodyAfterHeader(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	ctx := context.Background()
	w, header, body := chord(3)
	stored, created, err := st.CreateWorkflow(ctx, w)
	if err != nil || !created {
		t.Fatalf("CreateWorkflow = %v, %v", created, err)
	}
	if len(stored.Tasks) != 4 || len(stored.Edges) != 3 {
		t.Fatalf("stored %d tasks and %d edges, want 4 and 3", len(stored.Tasks), len(stored.Edges))
	}
	if diff := cmp.Diff(header, relayed(t, st)); diff != "" {
		t.Fatalf("first announced tasks (-want +got):\n%s", diff)
	}

	// Results arrive out of order; the body must receive them in header order.
	succeed(t, st, header[2], `{"value":"3"}`)
	succeed(t, st, header[0], `{"value":"1"}`)
	if got := relayed(t, st); len(got) != 0 {
		t.Fatalf("announced %v before the last header result", got)
	}
	if b, _ := st.Task(ctx, body); b.Waiting != 1 {
		t.Fatalf("body waits for %d tasks, want 1", b.Waiting)
	}
	succeed(t, st, header[1], `"2"`)
	if diff := cmp.Diff([]uuid.UUID{body}, relayed(t, st)); diff != "" {
		t.Fatalf("announced after the last result (-want +got):\n%s", diff)
	}
	b, err := st.Task(ctx, body)
	if err != nil {
		t.Fatal(err)
	}
	var args map[string]any
	if err := json.Unmarshal(b.Args, &args); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"values": []any{map[string]any{"value": "1"}, "2", map[string]any{"value": "3"}}}
	if diff := cmp.Diff(want, args); diff != "" {
		t.Errorf("body args (-want +got):\n%s", diff)
	}
	if claim := st.LoadClaims(ctx, []uuid.UUID{body})[0]; claim.Err != nil {
		t.Errorf("LoadClaims(body) after release = %v, want a claim", claim.Err)
	}
}

func TestWaitingTaskIsNotRunnable(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	w, _, body := chord(2)
	if _, _, err := st.CreateWorkflow(context.Background(), w); err != nil {
		t.Fatal(err)
	}
	var notRunnable *store.NotRunnableError
	err := st.LoadClaims(context.Background(), []uuid.UUID{body})[0].Err
	if !errors.As(err, &notRunnable) || !notRunnable.Waiting {
		t.Fatalf("LoadClaims(waiting body) error = %v, want a NotRunnableError with Waiting", err)
	}
}

func TestConcurrentResultsReleaseOnce(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	ctx := context.Background()
	const n = 16
	w, header, body := chord(n)
	if _, _, err := st.CreateWorkflow(ctx, w); err != nil {
		t.Fatal(err)
	}
	relayed(t, st)

	// Each result commits in its own transaction at the same moment, and duplicates race the
	// originals, as redeliveries would.
	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, id := range append(header, header...) {
		wg.Go(func() {
			<-start
			_, err := st.Finish(ctx, store.Outcome{ID: id, Attempt: 1, Worker: "w", State: task.Success, Result: json.RawMessage(`1`)})
			if err != nil {
				t.Error(err)
			}
		})
	}
	close(start)
	wg.Wait()

	if diff := cmp.Diff([]uuid.UUID{body}, relayed(t, st)); diff != "" {
		t.Fatalf("announced (-want +got):\n%s", diff)
	}
	b, err := st.Task(ctx, body)
	if err != nil {
		t.Fatal(err)
	}
	var args struct{ Values []int }
	if err := json.Unmarshal(b.Args, &args); err != nil || len(args.Values) != n {
		t.Fatalf("body args = %s (%v), want %d values", b.Args, err, n)
	}
}

func TestFailureRevokesDownstream(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	ctx := context.Background()
	// a -> b -> c, with d parallel to a and c waiting for it too.
	a, b, c, d := newTask("fib"), newTask("fib"), newTask("fib"), newTask("fib")
	w := store.NewWorkflow{ID: uuid.Must(uuid.NewV7()), Spec: json.RawMessage(`{}`),
		Tasks:   []store.WorkflowTask{{NewTask: a}, {NewTask: b}, {NewTask: c}, {NewTask: d}},
		Edges:   []store.Edge{{Parent: a.ID, Child: b.ID}, {Parent: b.ID, Child: c.ID}, {Parent: d.ID, Child: c.ID, Position: 1}},
		Outputs: []uuid.UUID{c.ID}}
	if _, _, err := st.CreateWorkflow(ctx, w); err != nil {
		t.Fatal(err)
	}

	succeed(t, st, d.ID, `1`)
	if _, err := st.Finish(ctx, store.Outcome{ID: a.ID, Attempt: 1, Worker: "w", State: task.Failure, Error: "boom"}); err != nil {
		t.Fatal(err)
	}

	got, err := st.Workflow(ctx, w.ID)
	if err != nil {
		t.Fatal(err)
	}
	states := map[uuid.UUID]task.State{}
	for _, tk := range got.Tasks {
		states[tk.ID] = tk.State
	}
	want := map[uuid.UUID]task.State{a.ID: task.Failure, b.ID: task.Revoked, c.ID: task.Revoked, d.ID: task.Success}
	if diff := cmp.Diff(want, states); diff != "" {
		t.Errorf("states (-want +got):\n%s", diff)
	}
	if ids := relayed(t, st); len(ids) != 2 { // a and d, announced at creation
		t.Errorf("announced %v, want only the two first tasks", ids)
	}
}

func TestWorkflowIdempotencyAndRevoke(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	ctx := context.Background()
	w, _, _ := chord(2)
	w.IdempotencyKey, w.RequestHash = "wf-"+w.ID.String(), []byte{1}
	first, created, err := st.CreateWorkflow(ctx, w)
	if err != nil || !created {
		t.Fatalf("CreateWorkflow = %v, %v", created, err)
	}

	again, _, _ := chord(2)
	again.IdempotencyKey, again.RequestHash = w.IdempotencyKey, []byte{1}
	replay, created, err := st.CreateWorkflow(ctx, again)
	if err != nil || created || replay.ID != first.ID {
		t.Fatalf("replay = %s, %v, %v; want %s, false, nil", replay.ID, created, err, first.ID)
	}
	again.RequestHash = []byte{2}
	if _, _, err := st.CreateWorkflow(ctx, again); !errors.Is(err, store.ErrIdempotencyConflict) {
		t.Fatalf("different request error = %v, want ErrIdempotencyConflict", err)
	}

	if err := st.MarkStarted(ctx, []store.StartMark{{ID: first.Tasks[0].ID, Attempt: 1, StartedAt: time.Now()}}, "w")[0]; err != nil {
		t.Fatal(err)
	}
	running, err := st.RevokeWorkflow(ctx, first.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]uuid.UUID{first.Tasks[0].ID}, running); diff != "" {
		t.Errorf("RevokeWorkflow running tasks (-want +got):\n%s", diff)
	}
	ids := []uuid.UUID{first.Tasks[0].ID, first.Tasks[1].ID, first.Tasks[2].ID}
	if diff := cmp.Diff([]task.State{task.Revoked, task.Revoked, task.Revoked}, states(t, st, ids...)); diff != "" {
		t.Errorf("states after RevokeWorkflow (-want +got):\n%s", diff)
	}
	if ids := relayed(t, st); len(ids) != 2 {
		// The header shares one outbox row with no task id, which stays; workers skip the
		// revoked tasks it announces.
		t.Errorf("announced %v after revoke, want the two header tasks of the shared row", ids)
	}
	if _, err := st.RevokeWorkflow(ctx, uuid.Must(uuid.NewV7())); !errors.Is(err, store.ErrWorkflowNotFound) {
		t.Errorf("RevokeWorkflow(unknown) error = %v, want ErrWorkflowNotFound", err)
	}
}

func TestWorkflowCountdownStartsAtRelease(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	ctx := context.Background()
	first, second := newTask("fib"), newTask("fib")
	w := store.NewWorkflow{ID: uuid.Must(uuid.NewV7()), Spec: json.RawMessage(`{}`),
		Tasks: []store.WorkflowTask{{NewTask: first}, {NewTask: second, ReleaseDelay: 30 * 24 * time.Hour}},
		Edges: []store.Edge{{Parent: first.ID, Child: second.ID}}, Outputs: []uuid.UUID{second.ID}}
	if _, _, err := st.CreateWorkflow(ctx, w); err != nil {
		t.Fatal(err)
	}
	relayed(t, st)
	succeed(t, st, first.ID, `1`)
	if ids := relayed(t, st); len(ids) != 0 {
		t.Fatalf("announced %v before the countdown passed", ids)
	}
	due, ok, err := st.NextOutboxDue(ctx)
	if err != nil || !ok || time.Until(due) < 30*24*time.Hour-time.Minute {
		t.Fatalf("next outbox due = %v, %v, %v; want 30 days from now", due, ok, err)
	}
}

func TestListenOutboxReportsReleases(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w, header, _ := chord(1)
	if _, _, err := st.CreateWorkflow(ctx, w); err != nil {
		t.Fatal(err)
	}
	notified := make(chan struct{}, 10)
	listening := make(chan error, 1)
	go func() { listening <- st.ListenOutbox(ctx, func() { notified <- struct{}{} }) }()
	<-notified // the notification it sends when it starts listening

	succeed(t, st, header[0], `1`)
	select {
	case <-notified:
	case err := <-listening:
		t.Fatalf("ListenOutbox ended: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no notification within 10s of the release")
	}
	cancel()
	if err := <-listening; err == nil {
		t.Error("ListenOutbox returned nil after its context ended, want the context error")
	}
}

func states(t *testing.T, st *store.Store, ids ...uuid.UUID) []task.State {
	t.Helper()
	var got []task.State
	for _, id := range ids {
		tk, err := st.Task(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, tk.State)
	}
	return got
}

func TestRequeueRevivesRevokedSteps(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	ctx := context.Background()
	// a -> b -> c, and x -> c: retrying a revives b and c; x's failure then revokes c again.
	a, b, c, x := newTask("fib"), newTask("fib"), newTask("fib"), newTask("fib")
	w := store.NewWorkflow{ID: uuid.Must(uuid.NewV7()), Spec: json.RawMessage(`{}`),
		Tasks:   []store.WorkflowTask{{NewTask: a}, {NewTask: b}, {NewTask: c}, {NewTask: x}},
		Edges:   []store.Edge{{Parent: a.ID, Child: b.ID}, {Parent: b.ID, Child: c.ID}, {Parent: x.ID, Child: c.ID, Position: 1}},
		Outputs: []uuid.UUID{c.ID}}
	if _, _, err := st.CreateWorkflow(ctx, w); err != nil {
		t.Fatal(err)
	}
	relayed(t, st)
	fail := func(id uuid.UUID) {
		t.Helper()
		if _, err := st.Finish(ctx, store.Outcome{ID: id, Attempt: 1, Worker: "w", State: task.Failure, Error: "boom"}); err != nil {
			t.Fatal(err)
		}
	}
	fail(a.ID)
	if diff := cmp.Diff([]task.State{task.Failure, task.Revoked, task.Revoked}, states(t, st, a.ID, b.ID, c.ID)); diff != "" {
		t.Fatalf("after a failed (-want +got):\n%s", diff)
	}
	if _, err := st.Requeue(ctx, b.ID); !errors.Is(err, store.ErrUpstreamFailed) {
		t.Fatalf("Requeue(b) error = %v, want ErrUpstreamFailed", err)
	}

	if _, err := st.Requeue(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]task.State{task.Pending, task.Pending, task.Pending}, states(t, st, a.ID, b.ID, c.ID)); diff != "" {
		t.Fatalf("after requeue of a (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]uuid.UUID{a.ID}, relayed(t, st)); diff != "" {
		t.Fatalf("announced after requeue (-want +got):\n%s", diff)
	}
	if _, err := st.Finish(ctx, store.Outcome{ID: a.ID, Attempt: 2, Worker: "w", State: task.Success, Result: json.RawMessage(`1`)}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]uuid.UUID{b.ID}, relayed(t, st)); diff != "" {
		t.Fatalf("announced after a succeeded (-want +got):\n%s", diff)
	}

	fail(x.ID)
	if diff := cmp.Diff([]task.State{task.Pending, task.Revoked}, states(t, st, b.ID, c.ID)); diff != "" {
		t.Fatalf("after x failed (-want +got):\n%s", diff)
	}
	if _, err := st.Requeue(ctx, x.ID); err != nil {
		t.Fatal(err)
	}
	got, err := st.Task(ctx, c.ID)
	if err != nil || got.State != task.Pending || got.Waiting != 2 {
		t.Fatalf("c after requeue of x = %s waiting %d (%v), want PENDING waiting for b and x", got.State, got.Waiting, err)
	}
}

func TestRequeueKeepsStepsBlockedElsewhere(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	ctx := context.Background()
	w, header, body := chord(2)
	if _, _, err := st.CreateWorkflow(ctx, w); err != nil {
		t.Fatal(err)
	}
	for _, id := range header {
		if _, err := st.Finish(ctx, store.Outcome{ID: id, Attempt: 1, Worker: "w", State: task.Failure, Error: "boom"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.Requeue(ctx, header[0]); err != nil {
		t.Fatal(err)
	}
	got, err := st.Task(ctx, body)
	if err != nil {
		t.Fatal(err)
	}
	if want := "not run: task " + header[1].String(); got.State != task.Revoked || !strings.HasPrefix(got.Error, want) {
		t.Errorf("body = %s %q, want REVOKED by the other failed header task (%q)", got.State, got.Error, want)
	}
}

func TestRequeueWaitsForConcurrentResult(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := testenv.Database(t)
	st, err := store.Open(ctx, url, 10)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	w, header, body := chord(2)
	if _, _, err := st.CreateWorkflow(ctx, w); err != nil {
		t.Fatal(err)
	}
	relayed(t, st)
	if _, err := st.Revoke(ctx, header[0]); err != nil {
		t.Fatal(err)
	}

	// A worker's result for the other header task is written but not committed yet: its trigger
	// has already passed over the revoked body.
	worker, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer worker.Close(ctx)
	tx, err := worker.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `UPDATE tasks SET state = 'SUCCESS', result = '1', finished_at = now() WHERE id = $1`, header[1]); err != nil {
		t.Fatal(err)
	}
	requeued := make(chan error, 1)
	go func() {
		_, err := st.Requeue(ctx, header[0])
		requeued <- err
	}()
	select {
	case err := <-requeued:
		t.Fatalf("Requeue returned %v before the result committed, want it to wait", err)
	case <-time.After(300 * time.Millisecond):
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-requeued; err != nil {
		t.Fatal(err)
	}

	got, err := st.Task(ctx, body)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != task.Pending || got.Waiting != 1 {
		t.Errorf("body = %s waiting for %d, want PENDING waiting only for the requeued task", got.State, got.Waiting)
	}
	relayed(t, st)
	succeed(t, st, header[0], `2`)
	if diff := cmp.Diff([]uuid.UUID{body}, relayed(t, st)); diff != "" {
		t.Errorf("announced after the requeued task succeeded (-want +got):\n%s", diff)
	}
}
