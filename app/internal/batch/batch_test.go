package batch

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestDoReturnsEachItemsResult(t *testing.T) {
	t.Parallel()
	double := func(_ context.Context, in []int) []Result[int] {
		out := make([]Result[int], len(in))
		for i, v := range in {
			if v < 0 {
				out[i].Err = errors.New("negative")
				continue
			}
			out[i].Value = 2 * v
		}
		return out
	}
	b := New(double, 8, 2, time.Second)
	var wg sync.WaitGroup
	for v := -5; v < 200; v++ {
		wg.Go(func() {
			got, err := b.Do(context.Background(), v)
			switch {
			case v < 0 && err == nil:
				t.Errorf("Do(%d) err = nil, want an error", v)
			case v >= 0 && (err != nil || got != 2*v):
				t.Errorf("Do(%d) = %d, %v; want %d", v, got, err, 2*v)
			}
		})
	}
	wg.Wait()
}

func TestConcurrentCallsShareBatches(t *testing.T) {
	t.Parallel()
	var sizes []int
	var mu sync.Mutex
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	slow := func(_ context.Context, in []int) []Result[int] {
		mu.Lock()
		sizes = append(sizes, len(in))
		mu.Unlock()
		entered <- struct{}{}
		<-release
		return make([]Result[int], len(in))
	}
	b := New(slow, 100, 1, 10*time.Second)
	var wg sync.WaitGroup
	wg.Go(func() { _, _ = b.Do(context.Background(), 0) })
	<-entered // the first call holds the only flush

	for i := 1; i < 50; i++ {
		wg.Go(func() { _, _ = b.Do(context.Background(), i) })
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		b.mu.Lock()
		queued := len(b.pending)
		b.mu.Unlock()
		if queued == 49 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d calls queued after 5s, want 49", queued)
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	<-entered // the second batch
	wg.Wait()
	if diff := cmp.Diff([]int{1, 49}, sizes); diff != "" {
		t.Errorf("batch sizes (-want +got):\n%s", diff)
	}
}

func TestPanicFailsTheBatch(t *testing.T) {
	t.Parallel()
	b := New(func(context.Context, []int) []Result[int] { panic("boom") }, 4, 1, time.Second)
	if _, err := b.Do(context.Background(), 1); err == nil {
		t.Fatal("Do returned no error after the batch function panicked")
	}
	short := New(func(context.Context, []int) []Result[int] { return nil }, 4, 1, time.Second)
	if _, err := short.Do(context.Background(), 1); err == nil {
		t.Fatal("Do returned no error for a missing result")
	}
}

func TestDoHonoursContext(t *testing.T) {
	t.Parallel()
	block := make(chan struct{})
	defer close(block)
	b := New(func(_ context.Context, in []int) []Result[int] { <-block; return make([]Result[int], len(in)) }, 4, 1, time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := b.Do(ctx, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Do err = %v, want DeadlineExceeded", err)
	}
}
