package builtin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/big"

	"github.com/taskflow-dev/taskflow/app/internal/task"
)

// maxSumValues is the most values one sum task adds.
const maxSumValues = 100_000

// SumResult is the result of the sum task. Like FibResult it has a "value" member, so a sum can
// take the results of fib tasks or of other sums.
type SumResult struct {
	// Count is the number of values added.
	Count int `json:"count"`
	// Value is the sum in decimal.
	Value string `json:"value"`
}

type sumArgs struct {
	// Values holds the integers to add. It is kept raw so that integers beyond 2^53 keep their
	// digits, and parsed by Validate.
	Values json.RawMessage `json:"values"`
	parsed []*big.Int
}

const sumValueKinds = `integers, decimal strings or objects with a "value" member such as fib results`

func (a *sumArgs) Validate() error {
	if len(a.Values) == 0 || string(a.Values) == "null" {
		return &task.FieldError{Field: "values", Message: "is required: give an array of " + sumValueKinds}
	}
	decoder := json.NewDecoder(bytes.NewReader(a.Values))
	decoder.UseNumber()
	var items []any
	if err := decoder.Decode(&items); err != nil {
		return &task.FieldError{Field: "values", Message: "must be an array of " + sumValueKinds}
	}
	if len(items) > maxSumValues {
		return &task.FieldError{Field: "values", Message: fmt.Sprintf("holds %d values, more than the limit of %d", len(items), maxSumValues)}
	}
	a.parsed = make([]*big.Int, len(items))
	for i, item := range items {
		value, ok := sumValue(item, true)
		if !ok {
			return &task.FieldError{Field: "values", Message: fmt.Sprintf("element %d is not one of %s", i, sumValueKinds)}
		}
		a.parsed[i] = value
	}
	return nil
}

// sumValue reads one integer of a sum: a JSON integer, a decimal string, or, when nested is
// true, an object whose "value" member is one of those.
func sumValue(item any, nested bool) (*big.Int, bool) {
	switch v := item.(type) {
	case json.Number:
		return new(big.Int).SetString(v.String(), 10)
	case string:
		return new(big.Int).SetString(v, 10)
	case map[string]any:
		inner, found := v["value"]
		if !nested || !found {
			return nil, false
		}
		return sumValue(inner, false)
	default:
		return nil, false
	}
}

func registerSum(r *task.Registry) {
	task.Register(r, task.Definition[*sumArgs]{
		Name: "sum",
		Description: "Add integers exactly: the values may be numbers, decimal strings or results of fib. " +
			"A chord's last step can take its values from the steps before it.",
		Run:        runSum,
		MaxRetries: -1,
	})
}

func runSum(ctx context.Context, args *sumArgs) (any, error) {
	total := new(big.Int)
	for i, v := range args.parsed {
		if i%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		total.Add(total, v)
	}
	return SumResult{Count: len(args.parsed), Value: total.String()}, nil
}
