package main

import (
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

func TestDeriveSecret(t *testing.T) {
	t.Parallel()
	urlSafe := regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)
	tests := []struct {
		name       string
		seedA      string
		nameA      string
		seedB      string
		nameB      string
		wantEquals bool
	}{
		{"same seed and name", "seed", "apiToken", "seed", "apiToken", true},
		{"other name", "seed", "apiToken", "seed", "monitorReadToken", false},
		{"other seed", "seed", "apiToken", "seed2", "apiToken", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a, b := deriveSecret(tt.seedA, tt.nameA), deriveSecret(tt.seedB, tt.nameB)
			if (a == b) != tt.wantEquals {
				t.Errorf("deriveSecret equal = %v, want %v (%q, %q)", a == b, tt.wantEquals, a, b)
			}
			for _, v := range []string{a, b} {
				if !urlSafe.MatchString(v) {
					t.Errorf("derived value %q is not 43 URL-safe characters", v)
				}
			}
		})
	}
}

func TestSecretObjectsAreSecret(t *testing.T) {
	t.Parallel()
	d := runDeploy(t, testConfig())

	wantKeys := map[string][]string{
		secretPostgres: {keyDatabase, keyDatabaseURL, keyPassword, keyUsername},
		secretRabbitMQ: {keyAMQPURL, keyDefaultUserCnf, keyKEDAHost, keyManagementURL, keyPassword, keyUsername},
		secretCookie:   {keyCookie},
		secretTokens:   {keyAPIToken, keyMonitorAdmin, keyMonitorRead},
	}
	gotKeys := map[string][]string{}
	for _, r := range d.ofType(typeSecret) {
		if r.Read {
			continue
		}
		data := stringMapOf(r.Inputs, "stringData")
		var keys []string
		for k, v := range data {
			keys = append(keys, k)
			if v == "" {
				t.Errorf("secret %s key %s is empty", r.ObjectName(), k)
			}
		}
		slices.Sort(keys)
		gotKeys[r.ObjectName()] = keys
		if !slices.Contains(r.SecretPaths, "stringData") {
			t.Errorf("secret %s stringData is not a secret value (secret paths %v)", r.ObjectName(), r.SecretPaths)
		}
	}
	if diff := cmp.Diff(wantKeys, gotKeys); diff != "" {
		t.Errorf("secret keys (-want +got):\n%s", diff)
	}

	outputs := map[string]pulumi.Output{
		"postgres password": d.Outputs.Secrets.PostgresPassword,
		"rabbitmq password": d.Outputs.Secrets.RabbitMQPassword,
		"database url":      d.Outputs.Secrets.DatabaseURL,
	}
	for name, o := range outputs {
		if _, secret := await(t, o); !secret {
			t.Errorf("%s output is not secret", name)
		}
	}
}

func TestSecretsStableAcrossRuns(t *testing.T) {
	t.Parallel()
	values := func(seed string) []string {
		cfg := testConfig()
		cfg.Secrets.Seed = pulumi.ToSecret(pulumi.String(seed)).(pulumi.StringOutput)
		d := runDeploy(t, cfg)
		var out []string
		for _, r := range d.ofType(typeSecret) {
			data := stringMapOf(r.Inputs, "stringData")
			for _, k := range slices.Sorted(maps.Keys(data)) {
				out = append(out, r.ObjectName()+"/"+k+"="+data[k])
			}
		}
		slices.Sort(out)
		return out
	}

	first, second, other := values("seed-a"), values("seed-a"), values("seed-b")
	if diff := cmp.Diff(first, second); diff != "" {
		t.Errorf("secrets changed between two runs with one seed (-first +second):\n%s", diff)
	}
	if cmp.Equal(first, other) {
		t.Errorf("secrets are the same for two different seeds")
	}
}

func TestNoSecretOutsideSecrets(t *testing.T) {
	t.Parallel()
	d := runDeploy(t, testConfig())

	var credentials []string
	for _, name := range secretNames() {
		credentials = append(credentials, deriveSecret("test-seed", name))
	}
	for _, r := range d.all() {
		if r.Type == typeSecret {
			continue
		}
		text := fmt.Sprint(r.Inputs)
		for i, c := range credentials {
			if strings.Contains(text, c) {
				t.Errorf("%s %s contains the plain value of %s", r.Type, r.Name, secretNames()[i])
			}
		}
	}
}

func TestCredentialURLs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name             string
		rabbitmqPassword string
		postgresPassword string
	}{
		{"derived", "", ""},
		{"special characters", "p@ss:w/rd%?&=+ ;", "we!rd@pa:ss/%"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig()
			wantRabbit, wantPostgres := deriveSecret("test-seed", "rabbitmqPassword"), deriveSecret("test-seed", "postgresPassword")
			if tt.rabbitmqPassword != "" {
				wantRabbit, wantPostgres = tt.rabbitmqPassword, tt.postgresPassword
				cfg.Secrets.Overrides = map[string]pulumi.StringOutput{
					"rabbitmqPassword": pulumi.ToSecret(pulumi.String(wantRabbit)).(pulumi.StringOutput),
					"postgresPassword": pulumi.ToSecret(pulumi.String(wantPostgres)).(pulumi.StringOutput),
				}
			}
			d := runDeploy(t, cfg)
			rabbit := stringMapOf(d.object(t, typeSecret, secretRabbitMQ).Inputs, "stringData")
			postgres := stringMapOf(d.object(t, typeSecret, secretPostgres).Inputs, "stringData")

			type parsed struct{ Scheme, User, Password, Host, Path, Query string }
			parse := func(raw string) parsed {
				u, err := url.Parse(raw)
				if err != nil {
					t.Fatalf("parse %q: %v", raw, err)
				}
				pw, _ := u.User.Password()
				return parsed{u.Scheme, u.User.Username(), pw, u.Host, u.EscapedPath(), u.RawQuery}
			}
			got := map[string]parsed{
				"amqp":       parse(rabbit[keyAMQPURL]),
				"management": parse(rabbit[keyManagementURL]),
				"keda":       parse(rabbit[keyKEDAHost]),
				"database":   parse(postgres[keyDatabaseURL]),
			}
			want := map[string]parsed{
				"amqp":       {"amqp", "taskflow", wantRabbit, "rabbitmq:5672", "/%2F", ""},
				"management": {"http", "taskflow", wantRabbit, "rabbitmq:15672", "", ""},
				// KEDA gets the credentials as separate parameters.
				"keda":     {"http", "", "", "rabbitmq.workflow.svc.cluster.local:15672", "/%2F", ""},
				"database": {"postgres", "taskflow", wantPostgres, "postgres:5432", "/taskflow", "sslmode=disable"},
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("credential URLs (-want +got):\n%s", diff)
			}
			if rabbit[keyPassword] != wantRabbit {
				t.Errorf("rabbitmq password key = %q, want %q", rabbit[keyPassword], wantRabbit)
			}
			wantConf := fmt.Sprintf("default_user = taskflow\ndefault_pass = %s\n", wantRabbit)
			if rabbit[keyDefaultUserCnf] != wantConf {
				t.Errorf("default_user.conf = %q, want %q", rabbit[keyDefaultUserCnf], wantConf)
			}
		})
	}
}

func TestRabbitMQPasswordRejected(t *testing.T) {
	t.Parallel()
	for _, pw := range []string{"has#hash", "two\nlines", " padded"} {
		t.Run(fmt.Sprintf("%q", pw), func(t *testing.T) {
			t.Parallel()
			cfg := testConfig()
			cfg.Secrets.Overrides = map[string]pulumi.StringOutput{
				"rabbitmqPassword": pulumi.ToSecret(pulumi.String(pw)).(pulumi.StringOutput),
			}
			_, err := tryDeploy(cfg, false)
			if err == nil || !strings.Contains(err.Error(), "rabbitmqPassword") {
				t.Errorf("deploy error = %v, want one that names rabbitmqPassword", err)
			}
		})
	}
}
