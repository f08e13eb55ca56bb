package builtin

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/taskflow-dev/taskflow/app/internal/task"
)

func TestSumAddsExactly(t *testing.T) {
	t.Parallel()
	r := newRegistry(t)
	cases := []struct {
		name   string
		values string
		want   SumResult
	}{
		{"numbers", `[1, 2, 3]`, SumResult{Count: 3, Value: "6"}},
		{"beyond 2^64", `["18446744073709551615", 1]`, SumResult{Count: 2, Value: "18446744073709551616"}},
		{"fib results", `[{"n": 10, "value": "55"}, {"n": 20, "value": "6765"}]`, SumResult{Count: 2, Value: "6820"}},
		{"negative", `[-5, "-7", 2]`, SumResult{Count: 3, Value: "-10"}},
		{"empty", `[]`, SumResult{Count: 0, Value: "0"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := runTask[SumResult](t.Context(), t, r, "sum", map[string]json.RawMessage{"values": json.RawMessage(c.values)})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSumRejectsBadValues(t *testing.T) {
	t.Parallel()
	r := newRegistry(t)
	cases := []struct {
		name string
		args string
		want string
	}{
		{"missing", `{}`, "is required: give an array of " + sumValueKinds},
		{"not an array", `{"values": {"value": "1"}}`, "must be an array of " + sumValueKinds},
		{"fraction", `{"values": [1, 2.5]}`, "element 1 is not one of " + sumValueKinds},
		{"word", `{"values": ["one"]}`, "element 0 is not one of " + sumValueKinds},
		{"nested twice", `{"values": [{"value": {"value": 1}}]}`, "element 0 is not one of " + sumValueKinds},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := r.Run(t.Context(), "sum", json.RawMessage(c.args))
			wantFieldError(t, err, task.FieldError{Field: "args.values", Message: c.want})
		})
	}
}
