package main

import (
	"strings"
	"testing"
	"time"

	"github.com/taskflow-dev/taskflow/app/internal/envconfig"
)

func readerOf(vars map[string]string) *envconfig.Reader {
	return envconfig.New(func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	})
}

var required = map[string]string{"DATABASE_URL": "postgres://u:p@db/x", "RABBITMQ_URL": "amqp://u:p@mq/"}

func TestLoadConfigDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := loadConfig(readerOf(required))
	if err != nil {
		t.Fatal(err)
	}
	w := cfg.Worker
	if w.Concurrency != 8 || w.Prefetch != 8 || w.DeliveryLimit != 10 || w.DrainTimeout != 25*time.Second ||
		w.StartedAfter != 50*time.Millisecond || cfg.HTTPAddr != ":9000" {
		t.Errorf("defaults = %+v", cfg)
	}
}

func TestLoadConfigPrefetchFollowsConcurrency(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"WORKER_CONCURRENCY": "20", "WORKER_STARTED_AFTER": "0"}
	for k, v := range required {
		vars[k] = v
	}
	cfg, err := loadConfig(readerOf(vars))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Worker.Prefetch != 20 {
		t.Errorf("prefetch = %d, want the concurrency 20", cfg.Worker.Prefetch)
	}
	if cfg.Worker.StartedAfter >= 0 {
		t.Errorf("StartedAfter = %s, want negative (mark at once) for WORKER_STARTED_AFTER=0", cfg.Worker.StartedAfter)
	}
}

func TestLoadConfigNamesBadSettings(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"WORKER_CONCURRENCY": "0", "WORKER_PREFETCH": "4", "RETRY_BASE_DELAY": "soon",
		"RETRY_MAX_DELAY": "1h"}
	for k, v := range required {
		vars[k] = v
	}
	_, err := loadConfig(readerOf(vars))
	if err == nil {
		t.Fatal("loadConfig accepted WORKER_CONCURRENCY=0")
	}
	for _, name := range []string{"WORKER_CONCURRENCY", "RETRY_BASE_DELAY"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
}

func TestLoadConfigRejectsMaxBelowBase(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"RETRY_BASE_DELAY": "10s", "RETRY_MAX_DELAY": "1s"}
	for k, v := range required {
		vars[k] = v
	}
	if _, err := loadConfig(readerOf(vars)); err == nil || !strings.Contains(err.Error(), "RETRY_MAX_DELAY") {
		t.Errorf("err = %v, want one naming RETRY_MAX_DELAY", err)
	}
}
