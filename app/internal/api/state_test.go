package api

import (
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/taskflow-dev/taskflow/app/internal/store"
	"github.com/taskflow-dev/taskflow/app/internal/task"
)

func TestWorkflowStateNamesFirstFailure(t *testing.T) {
	t.Parallel()
	now := time.Now()
	at := func(d time.Duration) *time.Time { v := now.Add(d); return &v }
	late := store.Task{ID: uuid.New(), Name: "a", State: task.Failure, Error: "late", FinishedAt: at(time.Second)}
	early := store.Task{ID: uuid.New(), Name: "b", State: task.Failure, Error: "early", FinishedAt: at(0)}
	revoked := store.Task{ID: uuid.New(), Name: "c", State: task.Revoked, FinishedAt: at(2 * time.Second)}

	state, msg := workflowState([]store.Task{late, early, revoked})
	if state != task.Failure {
		t.Fatalf("state = %s, want FAILURE", state)
	}
	if msg == nil || !strings.HasSuffix(*msg, "failed: early") {
		t.Errorf("error = %v, want the task that failed first", msg)
	}
}

func TestWorkflowStateWhileRunning(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		states []task.State
		want   task.State
	}{
		{"nothing started", []task.State{task.Pending, task.Pending}, task.Pending},
		{"one running", []task.State{task.Started, task.Pending}, task.Started},
		{"one finished", []task.State{task.Success, task.Pending}, task.Started},
		{"failed while a sibling runs", []task.State{task.Failure, task.Retry}, task.Started},
		{"all succeeded", []task.State{task.Success, task.Success}, task.Success},
		{"one revoked", []task.State{task.Success, task.Revoked}, task.Revoked},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var tasks []store.Task
			for _, s := range c.states {
				tasks = append(tasks, store.Task{ID: uuid.New(), State: s})
			}
			if got, _ := workflowState(tasks); got != c.want {
				t.Errorf("state = %s, want %s", got, c.want)
			}
		})
	}
}
