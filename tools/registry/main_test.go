package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func TestListenAddress(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name    string
		addr    string
		wantErr string
	}{
		{name: "ipv4 loopback", addr: "127.0.0.1:0"},
		{name: "other loopback ip", addr: "127.0.0.2:0"},
		{name: "all interfaces", addr: "0.0.0.0:0", wantErr: "must be a loopback IP address"},
		{name: "empty host", addr: ":0", wantErr: "must be a loopback IP address"},
		{name: "host name", addr: "localhost:0", wantErr: "must be a loopback IP address"},
		{name: "documentation ip", addr: "192.0.2.1:0", wantErr: "must be a loopback IP address"},
		{name: "missing port", addr: "127.0.0.1", wantErr: "parse listen address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			listener, err := listen(tt.addr)
			if listener != nil {
				listener.Close()
			}
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("listen(%q) error = %v, want nil", tt.addr, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("listen(%q) error = %v, want one containing %q", tt.addr, err, tt.wantErr)
			}
		})
	}
}

func TestParseFlagsRejectsArguments(t *testing.T) {
	t.Parallel()

	_, err := parseFlags([]string{"-addr", "127.0.0.1:0", "extra"})
	if err == nil || !strings.Contains(err.Error(), "unexpected arguments") {
		t.Fatalf("parseFlags error = %v, want one containing %q", err, "unexpected arguments")
	}
}

func TestServePushPull(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name    string
		blobDir func(t *testing.T) string
	}{
		{name: "blobs in memory", blobDir: func(*testing.T) string { return "" }},
		{name: "blobs on disk", blobDir: func(t *testing.T) string { return filepath.Join(t.TempDir(), "blobs") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			blobDir := tt.blobDir(t)
			listener, err := listen("127.0.0.1:0")
			if err != nil {
				t.Fatalf("listen: %v", err)
			}
			ctx, cancel := context.WithCancel(t.Context())
			served := make(chan error, 1)
			go func() { served <- serve(ctx, testLogger(t), listener, blobDir) }()

			ref, err := name.ParseReference(listener.Addr().String()+"/taskflow/probe:v1", name.Insecure)
			if err != nil {
				t.Fatalf("parse reference: %v", err)
			}
			pushed, err := random.Image(2048, 3)
			if err != nil {
				t.Fatalf("create random image: %v", err)
			}
			if err := remote.Write(ref, pushed, remote.WithContext(ctx)); err != nil {
				t.Fatalf("push %s: %v", ref, err)
			}

			pulled, err := remote.Image(ref, remote.WithContext(ctx))
			if err != nil {
				t.Fatalf("pull %s: %v", ref, err)
			}
			if diff := cmp.Diff(imageDigests(t, pushed), imageDigests(t, pulled)); diff != "" {
				t.Errorf("pulled image digests mismatch (-want +got):\n%s", diff)
			}
			if blobDir != "" {
				entries, err := os.ReadDir(filepath.Join(blobDir, "sha256"))
				if err != nil {
					t.Fatalf("read blob directory: %v", err)
				}
				// The image has 3 layers and 1 config blob. The manifest stays in memory.
				if got, want := len(entries), 4; got != want {
					t.Errorf("blob files = %d, want %d", got, want)
				}
			}

			cancel()
			select {
			case err := <-served:
				if err != nil {
					t.Errorf("serve returned %v after cancel, want nil", err)
				}
			case <-time.After(shutdownTimeout + 5*time.Second):
				t.Fatal("serve did not return after cancel")
			}
		})
	}
}

func TestRunWritesAddressFile(t *testing.T) {
	t.Parallel()

	addrFile := filepath.Join(t.TempDir(), "registry.addr")
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- run(ctx, testLogger(t), []string{"-addr", "127.0.0.1:0", "-addr-file", addrFile}) }()

	addr := waitForFile(t, addrFile, 10*time.Second)
	resp, err := http.Get("http://" + addr + "/v2/")
	if err != nil {
		t.Fatalf("GET /v2/: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if got, want := resp.StatusCode, http.StatusOK; got != want {
		t.Errorf("GET /v2/ status = %d, want %d", got, want)
	}
	if got, want := resp.Header.Get("Docker-Distribution-API-Version"), "registry/2.0"; got != want {
		t.Errorf("Docker-Distribution-API-Version = %q, want %q", got, want)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run returned %v after cancel, want nil", err)
		}
	case <-time.After(shutdownTimeout + 5*time.Second):
		t.Fatal("run did not return after cancel")
	}
}

// imageDigests returns the manifest digest followed by the config and layer
// digests of img.
func imageDigests(t *testing.T, img v1.Image) []string {
	t.Helper()

	digest, err := img.Digest()
	if err != nil {
		t.Fatalf("image digest: %v", err)
	}
	configName, err := img.ConfigName()
	if err != nil {
		t.Fatalf("config digest: %v", err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatalf("layers: %v", err)
	}
	digests := []string{digest.String(), configName.String()}
	for _, layer := range layers {
		layerDigest, err := layer.Digest()
		if err != nil {
			t.Fatalf("layer digest: %v", err)
		}
		digests = append(digests, layerDigest.String())
	}
	return digests
}

// waitForFile polls path until it contains a non-empty line or timeout passes,
// and returns that line.
func waitForFile(t *testing.T, path string, timeout time.Duration) string {
	t.Helper()

	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		data, err := os.ReadFile(path)
		if err == nil && strings.TrimSpace(string(data)) != "" {
			return strings.TrimSpace(string(data))
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s not written within %s", path, timeout)
	return ""
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}
