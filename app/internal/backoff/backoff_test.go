package backoff

import (
	"testing"
	"time"
)

func TestPolicyDelayStaysInUpperHalf(t *testing.T) {
	t.Parallel()
	p := Policy{Base: 100 * time.Millisecond, Max: time.Second}
	cases := []struct {
		name    string
		attempt int
		full    time.Duration // the un-jittered delay
	}{
		{"first", 1, 100 * time.Millisecond},
		{"second doubles", 2, 200 * time.Millisecond},
		{"fourth", 4, 800 * time.Millisecond},
		{"capped", 5, time.Second},
		{"far past the cap", 60, time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			seen := map[time.Duration]bool{}
			for range 200 {
				d := p.Delay(c.attempt)
				if d < c.full/2 || d > c.full {
					t.Fatalf("Delay(%d) = %s, want within [%s, %s]", c.attempt, d, c.full/2, c.full)
				}
				seen[d] = true
			}
			if len(seen) < 10 {
				t.Errorf("Delay(%d) took %d distinct values in 200 draws; want jitter", c.attempt, len(seen))
			}
		})
	}
}
