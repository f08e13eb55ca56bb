package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseOptionsErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{name: "tag without push", args: []string{"-tag", "dev"}, wantErr: "-tag needs -push"},
		{name: "positional argument", args: []string{"api"}, wantErr: "unexpected arguments"},
		{name: "unknown flag", args: []string{"-registy", "x"}, wantErr: "flag provided but not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := parseOptions(tt.args)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parseOptions(%q) error = %v, want it to contain %q", tt.args, err, tt.wantErr)
			}
		})
	}
}

func TestOptionsConfig(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	env := func(values map[string]string) func(string) string {
		return func(k string) string { return values[k] }
	}

	tests := []struct {
		name         string
		args         []string
		env          map[string]string
		wantServices []string
		wantCreated  int64
		wantErr      string
	}{
		{name: "defaults", args: []string{"-revision", ""}, wantServices: []string{"api", "worker", "monitor"}},
		{name: "auto revision outside git", args: nil, wantServices: []string{"api", "worker", "monitor"}},
		{name: "subset with spaces", args: []string{"-revision", "", "-services", " worker , api "}, wantServices: []string{"worker", "api"}},
		{name: "source date epoch", args: []string{"-revision", ""}, env: map[string]string{"SOURCE_DATE_EPOCH": "1700000000"},
			wantServices: []string{"api", "worker", "monitor"}, wantCreated: 1700000000},
		{name: "unknown service", args: []string{"-services", "web"}, wantErr: `unknown service "web"`},
		{name: "empty services", args: []string{"-services", ","}, wantErr: "no services selected"},
		{name: "bad platform", args: []string{"-platforms", "linux/amd64/v1/x"}, wantErr: "invalid platform"},
		{name: "bad epoch", args: nil, env: map[string]string{"SOURCE_DATE_EPOCH": "yesterday"}, wantErr: "invalid SOURCE_DATE_EPOCH"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o, err := parseOptions(tt.args)
			if err != nil {
				t.Fatalf("parseOptions: %v", err)
			}
			o.dir = t.TempDir() // Not a git work tree, so "auto" omits the revision.
			cfg, services, err := o.config(ctx, log, env(tt.env))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("config error = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("config: %v", err)
			}
			var names []string
			for _, s := range services {
				names = append(names, s.Name)
			}
			if diff := cmp.Diff(tt.wantServices, names); diff != "" {
				t.Errorf("services (-want +got):\n%s", diff)
			}
			if got := cfg.Created.Unix(); got != tt.wantCreated {
				t.Errorf("created = %d, want %d", got, tt.wantCreated)
			}
			if cfg.Revision != "" {
				t.Errorf("revision = %q, want empty outside a work tree", cfg.Revision)
			}
		})
	}
}

func TestPrintResultsJSON(t *testing.T) {
	t.Parallel()
	want := []result{{
		Service: "api", Ref: "localhost:5001/taskflow/api@sha256:aa", Digest: "sha256:aa", Pushed: true,
		Platforms: []platformResult{{Platform: "linux/amd64", Digest: "sha256:bb", Size: 42}},
	}}
	var buf bytes.Buffer
	if err := printResults(&buf, want, true); err != nil {
		t.Fatalf("printResults: %v", err)
	}
	var got []result
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("decode output %q: %v", buf.String(), err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("JSON round trip (-want +got):\n%s", diff)
	}
}
