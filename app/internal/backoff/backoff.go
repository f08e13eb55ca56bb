// Package backoff computes exponential delays with jitter for reconnect loops and task retries.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Policy is an exponential backoff: the n-th delay (from 1) is Base*2^(n-1), capped at Max, with
// "equal jitter": a uniformly random point in the upper half of that value. Half the delay is
// kept so that a retry never comes back at once, and the random half spreads out clients that
// failed together.
type Policy struct {
	Base time.Duration
	Max  time.Duration
}

// Delay returns the delay before retry number n (n >= 1).
func (p Policy) Delay(n int) time.Duration {
	d := p.Base
	for i := 1; i < n && d < p.Max; i++ {
		d *= 2
	}
	d = min(d, p.Max)
	if d <= 1 {
		return d
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// Retrier counts consecutive failures of one loop and sleeps for Policy.Delay of that count.
// It is not safe for concurrent use.
type Retrier struct {
	Policy   Policy
	failures int
}

// Wait sleeps for the next delay, or returns ctx.Err() when ctx ends first.
func (r *Retrier) Wait(ctx context.Context) error {
	r.failures++
	return Sleep(ctx, r.Policy.Delay(r.failures))
}

// Reset starts the count again after a success.
func (r *Retrier) Reset() { r.failures = 0 }

// Failures returns the number of consecutive failures so far.
func (r *Retrier) Failures() int { return r.failures }

// Sleep waits for d, or returns ctx.Err() when ctx ends first.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
