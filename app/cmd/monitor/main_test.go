package main

import (
	"strings"
	"testing"
	"time"

	"github.com/taskflow-dev/taskflow/app/internal/envconfig"
)

func lookup(vars map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}
}

func TestLoadConfig(t *testing.T) {
	t.Parallel()
	base := func(extra map[string]string) map[string]string {
		vars := map[string]string{
			"DATABASE_URL":            "postgres://u:secret@db:5432/tasks",
			"RABBITMQ_URL":            "amqp://u:secret@mq:5672/",
			"RABBITMQ_MANAGEMENT_URL": "http://u:secret@mq:15672/",
			"MONITOR_READ_TOKEN":      "read-token-0123456789",
			"MONITOR_ADMIN_TOKEN":     "admin-token-0123456789",
		}
		for k, v := range extra {
			if v == "" {
				delete(vars, k)
			} else {
				vars[k] = v
			}
		}
		return vars
	}
	cases := []struct {
		name    string
		vars    map[string]string
		wantErr string // empty means valid
	}{
		{"defaults", base(nil), ""},
		{"open without tokens", base(map[string]string{"MONITOR_READ_TOKEN": "", "MONITOR_ADMIN_TOKEN": "", "MONITOR_ALLOW_OPEN": "true"}), ""},
		{"no tokens", base(map[string]string{"MONITOR_READ_TOKEN": "", "MONITOR_ADMIN_TOKEN": ""}), "MONITOR_ALLOW_OPEN"},
		{"missing database", base(map[string]string{"DATABASE_URL": ""}), "DATABASE_URL"},
		{"missing management URL", base(map[string]string{"RABBITMQ_MANAGEMENT_URL": ""}), "RABBITMQ_MANAGEMENT_URL"},
		{"bad offline time", base(map[string]string{"WORKER_OFFLINE_AFTER": "soon"}), "WORKER_OFFLINE_AFTER"},
		{"bad open flag", base(map[string]string{"MONITOR_ALLOW_OPEN": "maybe"}), "MONITOR_ALLOW_OPEN"},
		{"relative prefix", base(map[string]string{"URL_PREFIX": "flower"}), "URL prefix"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := loadConfig(envconfig.New(lookup(c.vars)))
			switch {
			case c.wantErr == "" && err != nil:
				t.Fatalf("loadConfig: %v", err)
			case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
				t.Fatalf("loadConfig error = %v, want one that names %s", err, c.wantErr)
			case c.wantErr != "":
				if strings.Contains(err.Error(), "secret") {
					t.Errorf("error reveals a password: %v", err)
				}
				return
			}
			if cfg.HTTPAddr != ":5555" || cfg.Monitor.Prefix != "/flower" || cfg.Monitor.Queue != "tasks" ||
				cfg.Monitor.OfflineAfter != 15*time.Second || cfg.Monitor.ForgetAfter != 5*time.Minute {
				t.Errorf("defaults = addr %q, prefix %q, queue %q, offline %s, forget %s", cfg.HTTPAddr,
					cfg.Monitor.Prefix, cfg.Monitor.Queue, cfg.Monitor.OfflineAfter, cfg.Monitor.ForgetAfter)
			}
		})
	}
}
