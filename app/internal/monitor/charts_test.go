package monitor

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/taskflow-dev/taskflow/app/internal/store"
	"github.com/taskflow-dev/taskflow/app/internal/task"
)

func TestNiceMax(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in, want float64
	}{{0, 1}, {-3, 1}, {1, 1}, {1.5, 2}, {3, 5}, {7, 10}, {10, 10}, {11, 20}, {250, 500}, {0.3, 0.5}}
	for _, c := range cases {
		if got := niceMax(c.in); got != c.want {
			t.Errorf("niceMax(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   time.Duration
		want string
	}{
		{0, "0"}, {500 * time.Microsecond, "500µs"}, {1500 * time.Microsecond, "1.5ms"},
		{850 * time.Millisecond, "850ms"}, {1250 * time.Millisecond, "1.25s"},
		{184 * time.Second, "3m4s"}, {2*time.Hour + 30*time.Minute + 5*time.Second, "2h30m0s"},
	}
	for _, c := range cases {
		if got := formatDuration(c.in); got != c.want {
			t.Errorf("formatDuration(%s) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestThroughputChartStacksBars(t *testing.T) {
	t.Parallel()
	start := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	stats := []store.MinuteStats{
		{Minute: start, Submitted: 4, Succeeded: 2, Failed: 2},
		{Minute: start.Add(time.Minute)},
		{Minute: start.Add(2 * time.Minute), Submitted: 1, Succeeded: 5},
	}
	c := throughputChart(stats)
	if c.Empty {
		t.Fatal("chart with tasks is marked empty")
	}
	// The tallest minute has 5 tasks, so the scale is 5: one task is a fifth of the plot height.
	unit := (c.Bottom - c.Top) / 5
	type barShape struct {
		Class  string
		Height float64
	}
	var got []barShape
	for _, b := range c.Bars {
		got = append(got, barShape{b.Class, b.H})
	}
	want := []barShape{{"ok", round(2 * unit)}, {"bad", round(2 * unit)}, {"ok", round(5 * unit)}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("bars (-want +got):\n%s", diff)
	}
	if top := c.Bars[1].Y; top != round(c.Bottom-4*unit) {
		t.Errorf("failed bar starts at y=%v, want %v (stacked on the succeeded bar)", top, round(c.Bottom-4*unit))
	}
	if got := strings.Count(c.Lines[0].Points, ","); got != 3 {
		t.Errorf("submitted line has %d points, want 3", got)
	}
	if diff := cmp.Diff([]string{"12:00", "12:01", "12:02"}, []string{c.XTicks[0].Label, c.XTicks[1].Label, c.XTicks[2].Label}); diff != "" {
		t.Errorf("x labels (-want +got):\n%s", diff)
	}
}

func TestLatencyChartGapsAndEmpty(t *testing.T) {
	t.Parallel()
	start := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	if c := latencyChart([]store.MinuteStats{{Minute: start}}); !c.Empty {
		t.Error("chart without latencies is not marked empty")
	}
	c := latencyChart([]store.MinuteStats{
		{Minute: start, LatencyP50: 100 * time.Millisecond, LatencyP95: 300 * time.Millisecond, RuntimeP50: 50 * time.Millisecond},
		{Minute: start.Add(time.Minute)},
		{Minute: start.Add(2 * time.Minute), LatencyP50: 200 * time.Millisecond, LatencyP95: 400 * time.Millisecond, RuntimeP50: 60 * time.Millisecond},
	})
	// Each of the three series breaks at the empty minute, so there are six lines.
	if got := len(c.Lines); got != 6 {
		t.Errorf("lines = %d, want 6", got)
	}
	if got := c.YTicks[2].Label; got != "500ms" {
		t.Errorf("top label = %q, want 500ms", got)
	}
}

func TestTimelineOrder(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	at := func(ms int) *time.Time { v := t0.Add(time.Duration(ms) * time.Millisecond); return &v }
	tk := store.Task{ID: uuid.New(), Queue: "tasks", State: task.Success, CreatedAt: t0, FinishedAt: at(900)}
	attempts := []store.Attempt{
		{Number: 1, Worker: "w1", State: task.Retry, Error: "boom", StartedAt: *at(100), FinishedAt: at(200)},
		{Number: 2, Worker: "w2", State: task.Success, StartedAt: *at(700), FinishedAt: at(900)},
	}
	var got []string
	for _, e := range timeline(tk, attempts) {
		got = append(got, e.Event+"@"+e.At.Sub(t0).String())
	}
	want := []string{"submitted@0s", "started@100ms", "retried@200ms", "started@700ms", "succeeded@900ms"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("timeline (-want +got):\n%s", diff)
	}

	g := ganttChart(tk, attempts, t0.Add(time.Hour))
	if len(g.Bars) != 3 {
		t.Fatalf("gantt bars = %d, want 3 (task and two attempts)", len(g.Bars))
	}
	if g.Bars[0].X != g.Left || g.Bars[0].X+g.Bars[0].W != g.Right {
		t.Errorf("task bar spans %v..%v, want the whole axis %v..%v", g.Bars[0].X, g.Bars[0].X+g.Bars[0].W, g.Left, g.Right)
	}
	if g.Bars[2].Class != "ok" || g.Bars[1].Class != "warn" {
		t.Errorf("attempt classes = %q, %q; want warn, ok", g.Bars[1].Class, g.Bars[2].Class)
	}
}
