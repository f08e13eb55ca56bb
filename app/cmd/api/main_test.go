package main

import (
	"strings"
	"testing"

	"github.com/taskflow-dev/taskflow/app/internal/envconfig"
)

func readerOf(vars map[string]string) *envconfig.Reader {
	return envconfig.New(func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	})
}

func TestLoadConfigDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := loadConfig(readerOf(map[string]string{
		"DATABASE_URL": "postgres://u:p@db:5432/taskflow", "RABBITMQ_URL": "amqp://u:p@mq:5672/",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTPAddr != ":5000" || cfg.Queue != "tasks" || cfg.MaxBodyBytes != 8<<20 || cfg.MaxRetries != 3 {
		t.Errorf("defaults = %+v, want :5000, tasks, 8 MiB, 3 retries", cfg)
	}
}

func TestLoadConfigNamesBadSettings(t *testing.T) {
	t.Parallel()
	_, err := loadConfig(readerOf(map[string]string{
		"RABBITMQ_URL": "http://u:secret@mq/", "MAX_BODY_BYTES": "huge", "HTTP_ADDR": "5000",
	}))
	if err == nil {
		t.Fatal("loadConfig accepted a config without DATABASE_URL")
	}
	for _, name := range []string{"DATABASE_URL", "RABBITMQ_URL", "MAX_BODY_BYTES", "HTTP_ADDR"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("error %q shows a password", err)
	}
}

func TestConfigLogValueHidesSecrets(t *testing.T) {
	t.Parallel()
	cfg, err := loadConfig(readerOf(map[string]string{
		"DATABASE_URL": "postgres://u:pgsecret@db/x", "RABBITMQ_URL": "amqp://u:mqsecret@mq/", "API_TOKEN": "tokensecret",
	}))
	if err != nil {
		t.Fatal(err)
	}
	logged := cfg.LogValue().String()
	for _, secret := range []string{"pgsecret", "mqsecret", "tokensecret"} {
		if strings.Contains(logged, secret) {
			t.Errorf("logged config %s contains %s", logged, secret)
		}
	}
}
