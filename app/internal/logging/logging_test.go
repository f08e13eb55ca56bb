package logging

import (
	"bytes"
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, in, want string
	}{
		{"amqp", "amqp://taskflow:s3cret@127.0.0.1:5672/", "amqp://taskflow:xxxxx@127.0.0.1:5672/"},
		{"postgres with query", "postgres://u:p%40ss@db:5432/x?sslmode=disable", "postgres://u:xxxxx@db:5432/x?sslmode=disable"},
		{"password in query", "postgres://db/x?password=abc", "postgres://db/x?password=xxxxx"},
		{"no password", "amqp://host/", "amqp://host/"},
		{"unparsable", "postgres://u:p@[::1", "(unparsable URL)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if got := Redact(c.in); got != c.want {
				t.Errorf("Redact(%q) = %q, want %q", c.in, got, c.want)
			}
		})
	}
}

func TestSecretURLNeverLogsPassword(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log, err := New(&buf, "info", "test")
	if err != nil {
		t.Fatal(err)
	}
	log.Info("connected", "url", SecretURL("amqp://user:topsecret@h/"))
	if strings.Contains(buf.String(), "topsecret") || !strings.Contains(buf.String(), "user:xxxxx@h") {
		t.Errorf("log line = %s", buf.String())
	}
}

func TestNewRejectsUnknownLevel(t *testing.T) {
	t.Parallel()
	if _, err := New(&bytes.Buffer{}, "loud", "test"); err == nil {
		t.Error("New accepted the level \"loud\"")
	}
}
