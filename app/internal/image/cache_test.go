package image

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestLayerCacheReplacesCorruptEntry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	cache := &layerCache{dir: t.TempDir()}
	tar, err := writeTar(appEntries("svc", []byte("binary")), time.Unix(0, 0))
	if err != nil {
		t.Fatalf("writeTar: %v", err)
	}

	first, err := cache.newLayer(ctx, log, tar)
	if err != nil {
		t.Fatalf("newLayer: %v", err)
	}
	diffID, err := first.DiffID()
	if err != nil {
		t.Fatalf("DiffID: %v", err)
	}
	path := cache.path(diffID)
	if err := os.WriteFile(path, []byte("not gzip"), 0o644); err != nil {
		t.Fatalf("corrupt cache entry: %v", err)
	}

	second, err := cache.newLayer(ctx, log, tar)
	if err != nil {
		t.Fatalf("newLayer after corruption: %v", err)
	}
	firstDigest, err := first.Digest()
	if err != nil {
		t.Fatalf("Digest: %v", err)
	}
	secondDigest, err := second.Digest()
	if err != nil {
		t.Fatalf("Digest after corruption: %v", err)
	}
	if diff := cmp.Diff(firstDigest, secondDigest); diff != "" {
		t.Errorf("layer digest after corruption (-want +got):\n%s", diff)
	}
	stored, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read cache entry: %v", err)
	}
	if string(stored) == "not gzip" {
		t.Error("corrupt cache entry was not rewritten")
	}
}

func TestLayerCachePrune(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cache := &layerCache{dir: dir}
	old := time.Now().Add(-48 * time.Hour)

	files := []struct {
		name string
		old  bool
	}{
		{name: "aaaa" + cacheSuffix, old: true},
		{name: "bbbb" + cacheSuffix, old: false},
		{name: ".tmp-123", old: true},
		{name: "unrelated.txt", old: true},
	}
	for _, f := range files {
		path := filepath.Join(dir, f.name)
		writeFile(t, path, "x")
		if f.old {
			if err := os.Chtimes(path, old, old); err != nil {
				t.Fatalf("set mtime: %v", err)
			}
		}
	}

	removed, err := cache.prune(24 * time.Hour)
	if err != nil {
		t.Fatalf("prune: %v", err)
	}
	if got, want := removed, 2; got != want {
		t.Errorf("removed = %d, want %d", got, want)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("list cache: %v", err)
	}
	var left []string
	for _, e := range entries {
		left = append(left, e.Name())
	}
	if diff := cmp.Diff([]string{"bbbb" + cacheSuffix, "unrelated.txt"}, left); diff != "" {
		t.Errorf("files left (-want +got):\n%s", diff)
	}
}

func TestLayerCacheNil(t *testing.T) {
	t.Parallel()
	var cache *layerCache
	tar, err := writeTar(appEntries("svc", []byte("binary")), time.Unix(0, 0))
	if err != nil {
		t.Fatalf("writeTar: %v", err)
	}
	layer, err := cache.newLayer(context.Background(), slog.New(slog.DiscardHandler), tar)
	if err != nil {
		t.Fatalf("newLayer without cache: %v", err)
	}
	size, err := layer.Size()
	if err != nil {
		t.Fatalf("Size: %v", err)
	}
	if size <= 0 {
		t.Errorf("compressed size = %d, want more than 0", size)
	}
	if removed, err := cache.prune(time.Hour); removed != 0 || err != nil {
		t.Errorf("prune without cache = %d, %v, want 0, nil", removed, err)
	}
}
