package task

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestStatesOrder(t *testing.T) {
	t.Parallel()

	want := []State{"PENDING", "STARTED", "RETRY", "SUCCESS", "FAILURE", "REVOKED"}
	if diff := cmp.Diff(want, States()); diff != "" {
		t.Errorf("States() mismatch (-want +got):\n%s", diff)
	}
}

func TestStatesReturnsCopy(t *testing.T) {
	t.Parallel()

	States()[0] = "CHANGED"
	if got := States()[0]; got != Pending {
		t.Errorf("States()[0] = %q after a caller changed its copy, want %q", got, Pending)
	}
}

func TestStateTerminal(t *testing.T) {
	t.Parallel()

	tests := map[State]bool{
		Pending: false,
		Started: false,
		Retry:   false,
		Success: true,
		Failure: true,
		Revoked: true,
		"":      false,
		"DONE":  false,
	}
	for state, want := range tests {
		t.Run(string(state), func(t *testing.T) {
			t.Parallel()
			if got := state.Terminal(); got != want {
				t.Errorf("State(%q).Terminal() = %v, want %v", state, got, want)
			}
		})
	}
}

func TestParseState(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name  string
		input string
		want  State
	}{
		{name: "pending", input: "PENDING", want: Pending},
		{name: "started", input: "STARTED", want: Started},
		{name: "retry", input: "RETRY", want: Retry},
		{name: "success", input: "SUCCESS", want: Success},
		{name: "failure", input: "FAILURE", want: Failure},
		{name: "revoked", input: "REVOKED", want: Revoked},
		{name: "lower case", input: "success", want: Success},
		{name: "mixed case", input: "Revoked", want: Revoked},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseState(tt.input)
			if err != nil {
				t.Fatalf("ParseState(%q) error = %v", tt.input, err)
			}
			if got != tt.want {
				t.Errorf("ParseState(%q) = %q, want %q", tt.input, got, tt.want)
			}
		})
	}
}

func TestParseStateInvalid(t *testing.T) {
	t.Parallel()

	for _, input := range []string{"", "DONE", " SUCCESS", "SUCCESS "} {
		t.Run(input, func(t *testing.T) {
			t.Parallel()
			got, err := ParseState(input)
			if !errors.Is(err, ErrUnknownState) {
				t.Fatalf("ParseState(%q) error = %v, want ErrUnknownState", input, err)
			}
			if got != "" {
				t.Errorf("ParseState(%q) state = %q, want empty", input, got)
			}
		})
	}

	_, err := ParseState("DONE")
	want := `unknown task state "DONE": use one of PENDING, STARTED, RETRY, SUCCESS, FAILURE, REVOKED`
	if err.Error() != want {
		t.Errorf("ParseState(DONE) error = %q, want %q", err, want)
	}
}
