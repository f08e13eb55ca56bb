package builtin

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/taskflow-dev/taskflow/app/internal/task"
)

// newRegistry returns a registry with the built-in tasks.
func newRegistry(t testing.TB) *task.Registry {
	t.Helper()
	r := task.NewRegistry()
	Register(r)
	return r
}

// runTask marshals args, runs the task through the registry and decodes the result into R.
func runTask[R any](ctx context.Context, t testing.TB, r *task.Registry, name string, args any) (R, error) {
	t.Helper()
	var result R
	raw, err := json.Marshal(args)
	if err != nil {
		t.Fatalf("marshal args %v: %v", args, err)
	}
	out, err := r.Run(ctx, name, raw)
	if err != nil {
		return result, err
	}
	if err := json.Unmarshal(out, &result); err != nil {
		t.Fatalf("decode result %s of task %q: %v", out, name, err)
	}
	return result, nil
}

// wantFieldError checks that err is a permanent *task.FieldError equal to want.
func wantFieldError(t *testing.T, err error, want task.FieldError) {
	t.Helper()
	var fieldErr *task.FieldError
	if !errors.As(err, &fieldErr) {
		t.Fatalf("error = %v (%T), want *task.FieldError", err, err)
	}
	if diff := cmp.Diff(want, *fieldErr); diff != "" {
		t.Errorf("field error mismatch (-want +got):\n%s", diff)
	}
	if !task.IsPermanent(err) {
		t.Errorf("IsPermanent(%v) = false, want true", err)
	}
}

func TestRegisterNames(t *testing.T) {
	t.Parallel()
	r := newRegistry(t)

	want := []string{"csvstats", "fib", "sleep", "sum", "wordstats"}
	if diff := cmp.Diff(want, r.Names()); diff != "" {
		t.Errorf("Names() mismatch (-want +got):\n%s", diff)
	}
	for _, name := range want {
		info, ok := r.Info(name)
		if !ok {
			t.Fatalf("Info(%q) found = false", name)
		}
		if info.Description == "" {
			t.Errorf("Info(%q).Description is empty", name)
		}
		if info.MaxRetries != task.DefaultMaxRetries {
			t.Errorf("Info(%q).MaxRetries = %d, want %d", name, info.MaxRetries, task.DefaultMaxRetries)
		}
	}
}

func TestRegisterTimeouts(t *testing.T) {
	t.Parallel()
	r := newRegistry(t)

	tests := []struct {
		name string
		want time.Duration
	}{
		{name: "fib", want: task.DefaultTimeout},
		{name: "wordstats", want: task.DefaultTimeout},
		{name: "csvstats", want: task.DefaultTimeout},
		{name: "sleep", want: time.Hour + time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			info, _ := r.Info(tt.name)
			if info.Timeout != tt.want {
				t.Errorf("Info(%q).Timeout = %v, want %v", tt.name, info.Timeout, tt.want)
			}
		})
	}
}

func TestRegisterTwicePanics(t *testing.T) {
	t.Parallel()
	r := newRegistry(t)

	defer func() {
		if recover() == nil {
			t.Errorf("second Register did not panic")
		}
	}()
	Register(r)
}

func TestPipedStepChecksOtherArguments(t *testing.T) {
	t.Parallel()
	r := newRegistry(t)
	cases := []struct {
		name, task, pipe, args string
		wantField              string // "" when the args are valid
	}{
		{"wordstats text piped", "wordstats", "text", `{"top": 3}`, ""},
		{"wordstats bad top", "wordstats", "text", `{"top": 0}`, "args.top"},
		{"wordstats bad stopwords", "wordstats", "text", `{"stopwords": [""]}`, "args.stopwords"},
		{"wordstats top piped", "wordstats", "top", `{}`, "args.text"},
		{"csvstats csv piped", "csvstats", "csv", `{"group_by": "region", "value": "amount"}`, ""},
		{"csvstats bad ops", "csvstats", "csv", `{"group_by": "region", "ops": ["bogus"]}`, "args.ops"},
		{"csvstats missing group_by", "csvstats", "csv", `{"value": "amount"}`, "args.group_by"},
		{"csvstats ops piped", "csvstats", "ops", `{"csv": "a,b\n1,2\n", "group_by": "a"}`, ""},
		{"csvstats bad delimiter", "csvstats", "value", `{"csv": "a,b\n", "group_by": "a", "delimiter": "xx"}`, "args.delimiter"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := r.ValidatePiped(c.task, json.RawMessage(c.args), c.pipe)
			if c.wantField == "" {
				if err != nil {
					t.Fatalf("ValidatePiped error = %v, want nil", err)
				}
				return
			}
			var fieldErr *task.FieldError
			if !errors.As(err, &fieldErr) || fieldErr.Field != c.wantField {
				t.Errorf("ValidatePiped error = %v, want a field error on %s", err, c.wantField)
			}
		})
	}
}
