// Package batch coalesces concurrent calls into calls of a function that takes a slice, so that
// many small database writes share one statement and one commit ("group commit").
//
// A Batcher adds no delay: a call starts a flush at once when fewer than the maximum number of
// flushes are running, and only calls that arrive while all flushes are busy wait to be batched.
// Under low load every batch has one item; under high load batches grow to the maximum size.
package batch

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Result is the outcome of one item.
type Result[Out any] struct {
	Value Out
	Err   error
}

// Func processes a batch and returns one result per input, in input order.
type Func[In, Out any] func(ctx context.Context, in []In) []Result[Out]

// Batcher groups concurrent Do calls. It is safe for concurrent use and needs no cleanup: its
// goroutines exist only while there is work.
type Batcher[In, Out any] struct {
	fn       Func[In, Out]
	maxSize  int
	maxFlush int
	timeout  time.Duration

	mu       sync.Mutex
	pending  []*call[In, Out]
	flushing int
}

type call[In, Out any] struct {
	in     In
	result Result[Out]
	done   chan struct{}
}

// New returns a Batcher that passes at most maxSize items to fn at a time, runs at most
// maxFlushes calls of fn concurrently, and gives each call of fn a context with timeout.
func New[In, Out any](fn Func[In, Out], maxSize, maxFlushes int, timeout time.Duration) *Batcher[In, Out] {
	return &Batcher[In, Out]{fn: fn, maxSize: max(maxSize, 1), maxFlush: max(maxFlushes, 1), timeout: timeout}
}

// Do submits in and waits for its result. When ctx ends first, Do returns ctx.Err() at once, but
// the item may still be processed, as a statement sent to a database may commit after its client
// gave up.
func (b *Batcher[In, Out]) Do(ctx context.Context, in In) (Out, error) {
	c := &call[In, Out]{in: in, done: make(chan struct{})}
	b.mu.Lock()
	b.pending = append(b.pending, c)
	if b.flushing < b.maxFlush {
		b.flushing++
		go b.flush()
	}
	b.mu.Unlock()

	select {
	case <-c.done:
		return c.result.Value, c.result.Err
	case <-ctx.Done():
		var zero Out
		return zero, ctx.Err()
	}
}

// flush processes pending calls until none is left.
func (b *Batcher[In, Out]) flush() {
	for {
		b.mu.Lock()
		n := min(len(b.pending), b.maxSize)
		if n == 0 {
			b.flushing--
			b.mu.Unlock()
			return
		}
		calls := b.pending[:n:n]
		b.pending = b.pending[n:]
		b.mu.Unlock()

		ins := make([]In, n)
		for i, c := range calls {
			ins[i] = c.in
		}
		results := b.run(ins)
		for i, c := range calls {
			c.result = results[i]
			close(c.done)
		}
	}
}

// run calls fn and turns a panic or a wrong number of results into an error for every item, so
// that no caller waits forever.
func (b *Batcher[In, Out]) run(ins []In) (results []Result[Out]) {
	ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
	defer cancel()
	defer func() {
		if v := recover(); v != nil {
			results = failAll[Out](len(ins), fmt.Errorf("batch function panicked: %v", v))
		}
	}()
	results = b.fn(ctx, ins)
	if len(results) != len(ins) {
		return failAll[Out](len(ins), fmt.Errorf("batch function returned %d results for %d items", len(results), len(ins)))
	}
	return results
}

func failAll[Out any](n int, err error) []Result[Out] {
	results := make([]Result[Out], n)
	for i := range results {
		results[i].Err = err
	}
	return results
}
