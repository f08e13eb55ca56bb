package image

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func TestBuildReproducible(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	// Two copies of the same source in different directories, each with a cold layer cache, so
	// neither the checkout path nor the cache can make the digests agree by accident.
	first, err := newTestBuilder(t, Config{Dir: newHelloModule(t), Revision: "abc123"}).Build(ctx, helloService)
	if err != nil {
		t.Fatalf("first Build: %v", err)
	}
	second, err := newTestBuilder(t, Config{Dir: newHelloModule(t), Revision: "abc123"}).Build(ctx, helloService)
	if err != nil {
		t.Fatalf("second Build: %v", err)
	}

	if diff := cmp.Diff(first.Ref.String(), second.Ref.String()); diff != "" {
		t.Errorf("index reference differs between builds (-first +second):\n%s", diff)
	}
	if diff := cmp.Diff(platformDigests(first), platformDigests(second)); diff != "" {
		t.Errorf("platform digests differ between builds (-first +second):\n%s", diff)
	}
	if got, want := len(first.Platforms), 2; got != want {
		t.Errorf("platform count = %d, want %d", got, want)
	}
	if !strings.HasPrefix(first.Ref.String(), "localhost:5001/taskflow/hello@sha256:") {
		t.Errorf("Ref = %q, want localhost:5001/taskflow/hello@sha256:...", first.Ref)
	}
}

func TestBuildDigestChanges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := newHelloModule(t)
	baseline, err := newTestBuilder(t, Config{Dir: dir}).Build(ctx, helloService)
	if err != nil {
		t.Fatalf("baseline Build: %v", err)
	}

	tests := []struct {
		name string
		// setup returns the config of the changed build.
		setup func(t *testing.T) Config
	}{
		{
			name: "changed source file",
			setup: func(t *testing.T) Config {
				changed := newHelloModule(t)
				writeFile(t, filepath.Join(changed, "greeting.go"), "package main\n\nconst greeting = \"hi\"\n")
				return Config{Dir: changed}
			},
		},
		{
			name: "revision label",
			setup: func(t *testing.T) Config {
				return Config{Dir: dir, Revision: "0123456789abcdef"}
			},
		},
		{
			name: "created time",
			setup: func(t *testing.T) Config {
				return Config{Dir: dir, Created: time.Unix(1700000000, 0)}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			changed, err := newTestBuilder(t, tt.setup(t)).Build(ctx, helloService)
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			if changed.Digest() == baseline.Digest() {
				t.Errorf("index digest %s did not change", changed.Digest())
			}
			for i, p := range changed.Platforms {
				if p.Digest == baseline.Platforms[i].Digest {
					t.Errorf("%s digest %s did not change", p.Platform.String(), p.Digest)
				}
			}
		})
	}
}

func TestBuildCacheHitSameDigest(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := newHelloModule(t)
	cacheDir := t.TempDir()

	cold, err := newTestBuilder(t, Config{Dir: dir, CacheDir: cacheDir}).Build(ctx, helloService)
	if err != nil {
		t.Fatalf("cold Build: %v", err)
	}
	cached, err := filepath.Glob(filepath.Join(cacheDir, "*"+cacheSuffix))
	if err != nil {
		t.Fatalf("list cache: %v", err)
	}
	// One base layer shared by both platforms, plus one app layer per platform.
	if got, want := len(cached), 3; got != want {
		t.Errorf("cached layers = %d, want %d: %v", got, want, cached)
	}

	warm, err := newTestBuilder(t, Config{Dir: dir, CacheDir: cacheDir}).Build(ctx, helloService)
	if err != nil {
		t.Fatalf("warm Build: %v", err)
	}
	uncached, err := newTestBuilder(t, Config{Dir: dir, NoCache: true}).Build(ctx, helloService)
	if err != nil {
		t.Fatalf("uncached Build: %v", err)
	}
	if diff := cmp.Diff(cold.Ref.String(), warm.Ref.String()); diff != "" {
		t.Errorf("warm cache changed the reference (-cold +warm):\n%s", diff)
	}
	if diff := cmp.Diff(cold.Ref.String(), uncached.Ref.String()); diff != "" {
		t.Errorf("disabled cache changed the reference (-cold +uncached):\n%s", diff)
	}
}

func TestBuildErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := newHelloModule(t)

	tests := []struct {
		name    string
		cfg     Config
		svc     Service
		wantErr string
	}{
		{
			name:    "compile error",
			cfg:     Config{Dir: dir},
			svc:     Service{Name: "broken", Package: "./missing"},
			wantErr: "go build ./missing for linux/",
		},
		{
			name:    "upper-case service name",
			cfg:     Config{Dir: dir},
			svc:     Service{Name: "Hello", Package: "."},
			wantErr: `invalid service name "Hello"`,
		},
		{
			name:    "missing package",
			cfg:     Config{Dir: dir},
			svc:     Service{Name: "hello"},
			wantErr: `invalid service "hello": missing main package`,
		},
		{
			name:    "missing CA bundle",
			cfg:     Config{Dir: dir, CACertFile: filepath.Join(dir, "absent.pem")},
			svc:     helloService,
			wantErr: "read CA bundle",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			img, err := newTestBuilder(t, tt.cfg).Build(ctx, tt.svc)
			if err == nil {
				t.Fatalf("Build returned %s, want an error containing %q", img.Ref, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Build error = %q, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{name: "windows platform", cfg: Config{Platforms: []v1.Platform{{OS: "windows", Architecture: "amd64"}}}, wantErr: `unsupported platform "windows/amd64"`},
		{name: "platform variant", cfg: Config{Platforms: []v1.Platform{{OS: "linux", Architecture: "arm", Variant: "v7"}}}, wantErr: `unsupported platform "linux/arm/v7"`},
		{name: "duplicate platform", cfg: Config{Platforms: []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "amd64"}}}, wantErr: `duplicate platform "linux/amd64"`},
		{name: "registry with scheme", cfg: Config{Registry: "http://localhost:5001"}, wantErr: "invalid registry"},
		{name: "upper-case namespace", cfg: Config{Namespace: "TaskFlow"}, wantErr: "invalid registry"},
		{name: "negative jobs", cfg: Config{Jobs: -1}, wantErr: "invalid jobs -1"},
		{name: "negative cache age", cfg: Config{CacheMaxAge: -time.Hour}, wantErr: "invalid cache max age"},
		{name: "created before epoch", cfg: Config{Created: time.Unix(-1, 0)}, wantErr: "invalid created time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.cfg.NoCache = true
			_, err := New(tt.cfg)
			if err == nil {
				t.Fatalf("New returned no error, want one containing %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("New error = %q, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}
