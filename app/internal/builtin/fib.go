package builtin

import (
	"context"
	"fmt"
	"math/big"
	"math/bits"

	"github.com/taskflow-dev/taskflow/app/internal/task"
)

// maxFibN is the largest n that fib accepts. F(100000) has 20899 decimal digits.
const maxFibN = 100_000

// FibResult is the result of the fib task.
type FibResult struct {
	// N is the requested index.
	N int `json:"n"`
	// Value is F(n) in decimal. It is a string because JSON numbers lose precision beyond 2^53,
	// which F(n) passes at n = 79.
	Value string `json:"value"`
}

type fibArgs struct {
	N *int `json:"n"` // a pointer, so that a missing n is an error and not F(0)
}

func (a fibArgs) Validate() error {
	if a.N == nil {
		return &task.FieldError{Field: "n", Message: fmt.Sprintf("is required: give an integer between 0 and %d", maxFibN)}
	}
	if *a.N < 0 || *a.N > maxFibN {
		return &task.FieldError{Field: "n", Message: fmt.Sprintf("must be between 0 and %d, got %d", maxFibN, *a.N)}
	}
	return nil
}

func registerFib(r *task.Registry) {
	task.Register(r, task.Definition[fibArgs]{
		Name:        "fib",
		Description: fmt.Sprintf("Compute the Fibonacci number F(n) for n in 0..%d, with F(0) = 0 and F(1) = 1.", maxFibN),
		Run:         runFib,
		MaxRetries:  -1,
	})
}

func runFib(ctx context.Context, args fibArgs) (any, error) {
	value, err := fibonacci(ctx, *args.N)
	if err != nil {
		return nil, err
	}
	return FibResult{N: *args.N, Value: value.String()}, nil
}

// fibonacci computes F(n) by fast doubling, in O(log n) big-integer multiplications, from
//
//	F(2k)   = F(k) * (2*F(k+1) - F(k))
//	F(2k+1) = F(k)^2 + F(k+1)^2
//
// It walks the bits of n from the top, keeping F(k) and F(k+1) for the prefix k read so far.
// It returns ctx.Err() if ctx is done before it finishes.
func fibonacci(ctx context.Context, n int) (*big.Int, error) {
	if n < 0 {
		return nil, fmt.Errorf("fibonacci: n must not be negative, got %d", n)
	}

	current := big.NewInt(0) // F(k)
	next := big.NewInt(1)    // F(k+1)
	for bit := bits.Len(uint(n)) - 1; bit >= 0; bit-- {
		if err := ctx.Err(); err != nil {
			return nil, err
		}

		double := new(big.Int).Lsh(next, 1)
		double.Sub(double, current)
		double.Mul(double, current) // F(2k)

		doublePlusOne := new(big.Int).Mul(current, current)
		doublePlusOne.Add(doublePlusOne, new(big.Int).Mul(next, next)) // F(2k+1)

		if n>>bit&1 == 1 {
			current, next = doublePlusOne, double.Add(double, doublePlusOne) // k = 2k+1
		} else {
			current, next = double, doublePlusOne // k = 2k
		}
	}
	return current, nil
}
