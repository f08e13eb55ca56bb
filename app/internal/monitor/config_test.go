package monitor

import (
	"strings"
	"testing"
	"time"
)

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, prefix, want string
	}{
		{"empty means /flower", "", "/flower"},
		{"trailing slash removed", "/flower/", "/flower"},
		{"nested prefix", "/ops/flower", "/ops/flower"},
		{"root", "/", "/"},
		{"repeated slashes are the root", "///", "/"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			cfg := Config{Prefix: c.prefix}.WithDefaults()
			if cfg.Prefix != c.want {
				t.Errorf("Prefix = %q, want %q", cfg.Prefix, c.want)
			}
			if again := cfg.WithDefaults().Prefix; again != cfg.Prefix {
				t.Errorf("WithDefaults twice: %q, then %q", cfg.Prefix, again)
			}
		})
	}

	cfg := Config{}.WithDefaults()
	if cfg.Queue != "tasks" || cfg.OfflineAfter != 15*time.Second || cfg.ForgetAfter != 5*time.Minute ||
		cfg.RefreshInterval != 5*time.Second || cfg.ChartMinutes != 30 || cfg.MaxStreams != 100 {
		t.Errorf("defaults = %+v", cfg)
	}
	if got := (Config{Prefix: "/"}).WithDefaults().base(); got != "" {
		t.Errorf("base of the root prefix = %q, want empty", got)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		cfg     Config
		wantErr string // empty means valid
	}{
		{"tokens", Config{ReadToken: testReadToken, AdminToken: testAdminToken}, ""},
		{"admin token only", Config{AdminToken: testAdminToken}, ""},
		{"open without tokens", Config{AllowOpen: true}, ""},
		{"no token and not open", Config{}, "no token is set"},
		{"short token", Config{AdminToken: "short"}, "at least 16"},
		{"equal tokens", Config{ReadToken: testAdminToken, AdminToken: testAdminToken}, "equal"},
		{"relative prefix", Config{Prefix: "flower", AllowOpen: true}, "must be a path"},
		{"prefix with a query", Config{Prefix: "/flower?x", AllowOpen: true}, "must be a path"},
		{"forget before offline", Config{AllowOpen: true, OfflineAfter: time.Minute, ForgetAfter: time.Second}, "shorter than"},
		{"too many chart minutes", Config{AllowOpen: true, ChartMinutes: 2000}, "maximum"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			err := c.cfg.WithDefaults().Validate()
			switch {
			case c.wantErr == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
				t.Errorf("Validate() = %v, want an error containing %q", err, c.wantErr)
			}
		})
	}
}
