package monitor

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/taskflow-dev/taskflow/app/internal/store"
	"github.com/taskflow-dev/taskflow/app/internal/task"
)

// chart is the geometry of an inline SVG chart in user units; the template draws it. Computing
// it in Go keeps the pages free of chart scripts.
type chart struct {
	Width, Height float64
	// Plot area.
	Left, Top, Right, Bottom float64
	Bars                     []bar
	Lines                    []line
	YTicks                   []tick
	XTicks                   []tick
	Legend                   []legendItem
	Empty                    bool
	// Class is an extra CSS class of the SVG element.
	Class string
}

type bar struct {
	X, Y, W, H float64
	Class      string
	Title      string
}

type line struct {
	Points string
	Class  string
}

type tick struct {
	X, Y  float64
	Label string
	// Anchor is the SVG text-anchor of the label: start, middle or end.
	Anchor string
}

type legendItem struct {
	Class, Label string
}

// Chart size in SVG user units; the SVG scales to the page width.
const (
	chartWidth  = 720
	chartHeight = 200
	chartLeft   = 48
	chartRight  = 712
	chartTop    = 10
	chartBottom = 176
)

func newChart() chart {
	return chart{Width: chartWidth, Height: chartHeight, Left: chartLeft, Top: chartTop, Right: chartRight, Bottom: chartBottom}
}

// throughputChart draws tasks finished per minute as stacked bars (succeeded, failed, revoked)
// and tasks submitted per minute as a line.
func throughputChart(stats []store.MinuteStats) chart {
	c := newChart()
	c.Legend = []legendItem{{"ok", "succeeded"}, {"bad", "failed"}, {"muted", "revoked"}, {"line-a", "submitted"}}
	if len(stats) == 0 {
		c.Empty = true
		return c
	}
	var top int64
	for _, s := range stats {
		top = max(top, s.Succeeded+s.Failed+s.Revoked, s.Submitted)
	}
	yMax := niceMax(float64(top))
	c.Empty = top == 0
	c.yTicks(yMax, func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) })
	c.xTicks(stats)

	slot := (c.Right - c.Left) / float64(len(stats))
	var submitted []string
	for i, s := range stats {
		x := c.Left + float64(i)*slot
		base := c.Bottom
		for _, part := range []struct {
			n     int64
			class string
			what  string
		}{{s.Succeeded, "ok", "succeeded"}, {s.Failed, "bad", "failed"}, {s.Revoked, "muted", "revoked"}} {
			if part.n == 0 {
				continue
			}
			h := float64(part.n) / yMax * (c.Bottom - c.Top)
			base -= h
			c.Bars = append(c.Bars, bar{X: round(x + slot*0.1), Y: round(base), W: round(slot * 0.8), H: round(h),
				Class: part.class, Title: fmt.Sprintf("%s UTC: %d %s", s.Minute.UTC().Format("15:04"), part.n, part.what)})
		}
		submitted = append(submitted, point(x+slot/2, c.Bottom-float64(s.Submitted)/yMax*(c.Bottom-c.Top)))
	}
	c.Lines = []line{{Points: strings.Join(submitted, " "), Class: "line-a"}}
	return c
}

// latencyChart draws, per minute, the p50 and p95 time from submit to success and the p50 run
// time of attempts. Minutes without data leave a gap.
func latencyChart(stats []store.MinuteStats) chart {
	c := newChart()
	c.Legend = []legendItem{{"line-a", "latency p50"}, {"line-b", "latency p95"}, {"line-c", "run time p50"}}
	var top time.Duration
	for _, s := range stats {
		top = max(top, s.LatencyP95, s.LatencyP50, s.RuntimeP50)
	}
	if top == 0 {
		c.Empty = true
		return c
	}
	yMax := niceMax(float64(top.Milliseconds()) + 1)
	c.yTicks(yMax, func(v float64) string { return formatDuration(time.Duration(v) * time.Millisecond) })
	c.xTicks(stats)

	slot := (c.Right - c.Left) / float64(len(stats))
	series := []struct {
		class string
		value func(store.MinuteStats) time.Duration
	}{
		{"line-a", func(s store.MinuteStats) time.Duration { return s.LatencyP50 }},
		{"line-b", func(s store.MinuteStats) time.Duration { return s.LatencyP95 }},
		{"line-c", func(s store.MinuteStats) time.Duration { return s.RuntimeP50 }},
	}
	for _, sr := range series {
		var points []string
		flush := func() {
			if len(points) > 0 {
				c.Lines = append(c.Lines, line{Points: strings.Join(points, " "), Class: sr.class})
			}
			points = nil
		}
		for i, s := range stats {
			v := sr.value(s)
			if v <= 0 {
				flush()
				continue
			}
			ms := float64(v.Microseconds()) / 1000
			points = append(points, point(c.Left+float64(i)*slot+slot/2, c.Bottom-ms/yMax*(c.Bottom-c.Top)))
		}
		flush()
	}
	// A single point draws no line, so lone points become short bars.
	for i, l := range c.Lines {
		if !strings.Contains(l.Points, " ") {
			c.Lines[i].Points = l.Points + " " + l.Points
		}
	}
	return c
}

// yTicks adds labels at 0, half and the top of the scale.
func (c *chart) yTicks(yMax float64, label func(float64) string) {
	for _, f := range []float64{0, 0.5, 1} {
		c.YTicks = append(c.YTicks, tick{X: c.Left - 6, Y: round(c.Bottom - f*(c.Bottom-c.Top)), Label: label(yMax * f), Anchor: "end"})
	}
}

// xTicks labels the first, middle and last minute.
func (c *chart) xTicks(stats []store.MinuteStats) {
	slot := (c.Right - c.Left) / float64(len(stats))
	indexes := []int{0, len(stats) / 2, len(stats) - 1}
	indexes = slices.Compact(indexes)
	for _, i := range indexes {
		c.XTicks = append(c.XTicks, tick{X: round(c.Left + float64(i)*slot + slot/2), Y: c.Bottom + 16,
			Label: stats[i].Minute.UTC().Format("15:04"), Anchor: "middle"})
	}
}

// niceMax returns the smallest of 1, 2 or 5 times a power of ten that is at least v, and 1 for
// v <= 0.
func niceMax(v float64) float64 {
	if v <= 0 {
		return 1
	}
	magnitude := math.Pow(10, math.Floor(math.Log10(v)))
	for _, step := range []float64{1, 2, 5, 10} {
		if v <= step*magnitude {
			return step * magnitude
		}
	}
	return 10 * magnitude
}

func point(x, y float64) string {
	return strconv.FormatFloat(round(x), 'f', -1, 64) + "," + strconv.FormatFloat(round(y), 'f', -1, 64)
}

func round(v float64) float64 {
	return math.Round(v*10) / 10
}

// formatDuration prints d with about three significant digits: 850ms, 1.25s, 3m4s.
func formatDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "0"
	case d < time.Millisecond:
		return strconv.FormatFloat(float64(d.Nanoseconds())/1e3, 'f', 0, 64) + "µs"
	case d < time.Second:
		return strconv.FormatFloat(float64(d.Microseconds())/1e3, 'g', 3, 64) + "ms"
	case d < time.Minute:
		return strconv.FormatFloat(d.Seconds(), 'g', 3, 64) + "s"
	case d < time.Hour:
		return d.Truncate(time.Second).String()
	default:
		return d.Truncate(time.Minute).String()
	}
}

// timelineEntry is one step in the life of a task.
type timelineEntry struct {
	At time.Time `json:"at"`
	// Event is submitted, started, succeeded, failed, retried, scheduled or revoked.
	Event   string `json:"event"`
	Attempt int    `json:"attempt,omitempty"`
	Worker  string `json:"worker,omitempty"`
	Detail  string `json:"detail,omitempty"`
}

// timeline lists the steps of a task from submit to finish in time order.
func timeline(t store.Task, attempts []store.Attempt) []timelineEntry {
	entries := []timelineEntry{{At: t.CreatedAt, Event: "submitted", Detail: "queue " + t.Queue}}
	for _, a := range attempts {
		entries = append(entries, timelineEntry{At: a.StartedAt, Event: "started", Attempt: a.Number, Worker: a.Worker})
		if a.FinishedAt == nil || a.State == task.Started {
			continue
		}
		ev := map[task.State]string{task.Success: "succeeded", task.Failure: "failed", task.Retry: "retried"}[a.State]
		if ev == "" {
			ev = strings.ToLower(string(a.State))
		}
		entries = append(entries, timelineEntry{At: *a.FinishedAt, Event: ev, Attempt: a.Number, Worker: a.Worker, Detail: a.Error})
	}
	if t.ETA != nil && (t.State == task.Pending || t.State == task.Retry) {
		entries = append(entries, timelineEntry{At: *t.ETA, Event: "scheduled", Detail: "next attempt due"})
	}
	if t.State == task.Revoked && t.FinishedAt != nil {
		entries = append(entries, timelineEntry{At: *t.FinishedAt, Event: "revoked"})
	}
	slices.SortStableFunc(entries, func(a, b timelineEntry) int { return a.At.Compare(b.At) })
	return entries
}

// ganttChart draws the task from submit to finish (or now) on the first row and each attempt on
// its own row below, on one time axis.
func ganttChart(t store.Task, attempts []store.Attempt, now time.Time) chart {
	c := newChart()
	const row = 24
	c.Height = float64(chartTop + row*(len(attempts)+1) + 24)
	c.Bottom = c.Height - 24
	c.Left = 90

	start := t.CreatedAt
	end := now
	if t.FinishedAt != nil {
		end = *t.FinishedAt
	}
	for _, a := range attempts {
		if a.FinishedAt != nil && a.FinishedAt.After(end) {
			end = *a.FinishedAt
		}
	}
	span := max(end.Sub(start), time.Millisecond)
	x := func(at time.Time) float64 {
		return round(c.Left + float64(at.Sub(start))/float64(span)*(c.Right-c.Left))
	}
	width := func(from, to time.Time) float64 { return max(x(to)-x(from), 2) }

	c.Bars = append(c.Bars, bar{X: x(start), Y: chartTop, W: width(start, end), H: row - 6,
		Class: stateClass(t.State), Title: fmt.Sprintf("task %s, %s from submit", t.State, formatDuration(end.Sub(start)))})
	c.YTicks = append(c.YTicks, tick{X: c.Left - 6, Y: chartTop + row/2, Label: "task", Anchor: "end"})
	for i, a := range attempts {
		to := now
		if a.FinishedAt != nil {
			to = *a.FinishedAt
		}
		y := float64(chartTop + row*(i+1))
		c.Bars = append(c.Bars, bar{X: x(a.StartedAt), Y: y, W: width(a.StartedAt, to), H: row - 6,
			Class: stateClass(a.State), Title: fmt.Sprintf("attempt %d on %s: %s, %s", a.Number, a.Worker, a.State, formatDuration(to.Sub(a.StartedAt)))})
		c.YTicks = append(c.YTicks, tick{X: c.Left - 6, Y: y + row/2, Label: "attempt " + strconv.Itoa(a.Number), Anchor: "end"})
	}
	c.XTicks = []tick{
		{X: c.Left, Y: c.Bottom + 16, Label: "+0", Anchor: "start"},
		{X: c.Right, Y: c.Bottom + 16, Label: "+" + formatDuration(span), Anchor: "end"},
	}
	c.Class = "gantt"
	return c
}

// stateClass maps a state to the CSS class that colours it.
func stateClass(s task.State) string {
	switch s {
	case task.Success:
		return "ok"
	case task.Failure:
		return "bad"
	case task.Retry:
		return "warn"
	case task.Started:
		return "run"
	case task.Revoked:
		return "muted"
	default:
		return "wait"
	}
}
