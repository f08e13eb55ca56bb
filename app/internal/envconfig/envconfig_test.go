package envconfig

import (
	"strings"
	"testing"
	"time"
)

func reader(vars map[string]string) *Reader {
	return New(func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	})
}

func TestDefaultsWhenUnset(t *testing.T) {
	t.Parallel()
	r := reader(nil)
	if got := r.Int("N", 8, 1, 10); got != 8 {
		t.Errorf("Int = %d, want 8", got)
	}
	if got := r.Duration("D", time.Second, 0, time.Hour); got != time.Second {
		t.Errorf("Duration = %s, want 1s", got)
	}
	if got := r.Addr("HTTP_ADDR", ":5000"); got != ":5000" {
		t.Errorf("Addr = %q, want :5000", got)
	}
	if err := r.Err(); err != nil {
		t.Errorf("Err = %v, want nil", err)
	}
}

func TestErrorsNameTheSetting(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		vars map[string]string
		read func(*Reader)
		want string
	}{
		{"int not a number", map[string]string{"N": "eight"}, func(r *Reader) { r.Int("N", 8, 1, 10) }, `N: "eight" is not an integer`},
		{"int out of range", map[string]string{"N": "11"}, func(r *Reader) { r.Int("N", 8, 1, 10) }, "N: 11 is outside the range 1..10"},
		{"bad duration", map[string]string{"D": "5"}, func(r *Reader) { r.Duration("D", time.Second, 0, time.Hour) }, "D: \"5\" is not a duration"},
		{"missing url", nil, func(r *Reader) { r.URL("DATABASE_URL", "postgres") }, "DATABASE_URL: missing"},
		{"wrong scheme", map[string]string{"RABBITMQ_URL": "http://u:p@h/"}, func(r *Reader) { r.URL("RABBITMQ_URL", "amqp", "amqps") }, `the scheme is "http"`},
		{"bad address", map[string]string{"HTTP_ADDR": "5000"}, func(r *Reader) { r.Addr("HTTP_ADDR", ":5000") }, "HTTP_ADDR"},
		{"not one of", map[string]string{"LOG_LEVEL": "loud"}, func(r *Reader) { r.OneOf("LOG_LEVEL", "info", "debug", "info") }, `"loud" is not one of debug, info`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := reader(c.vars)
			c.read(r)
			err := r.Err()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Err = %v, want it to contain %q", err, c.want)
			}
		})
	}
}

func TestURLErrorHidesPassword(t *testing.T) {
	t.Parallel()
	r := reader(map[string]string{"RABBITMQ_URL": "http://user:hunter2@host/"})
	r.URL("RABBITMQ_URL", "amqp")
	if err := r.Err(); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("Err = %v, want an error without the password", err)
	}
}

func TestAllProblemsReported(t *testing.T) {
	t.Parallel()
	r := reader(map[string]string{"A": "x", "B": "y"})
	r.Int("A", 0, 0, 1)
	r.Int("B", 0, 0, 1)
	err := r.Err()
	if err == nil || !strings.Contains(err.Error(), "A:") || !strings.Contains(err.Error(), "B:") {
		t.Errorf("Err = %v, want both A and B named", err)
	}
}
