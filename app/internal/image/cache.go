package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// cacheSuffix ends the name of every cached file and names the compression settings. Change it
// together with gzipBytes, so an entry compressed with other settings is not used.
const cacheSuffix = ".gzip9.tar.gz"

// layerCache stores gzip-compressed layers in a directory, one file per uncompressed tar,
// named by the tar's SHA-256. A nil *layerCache stores nothing. It is safe for concurrent use,
// including by several processes, because entries are written to a temporary file and renamed.
type layerCache struct {
	dir string
}

// newLayer returns an OCI gzip layer for the uncompressed tar, from the cache when an entry
// for it exists and is intact, and otherwise compressing it and storing the result.
func (c *layerCache) newLayer(ctx context.Context, log *slog.Logger, uncompressed []byte) (v1.Layer, error) {
	sum := sha256.Sum256(uncompressed)
	diffID := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}

	if compressed, ok := c.load(diffID); ok {
		layer, err := layerFromGzip(compressed)
		if err == nil && layerHasDiffID(layer, diffID) {
			return layer, nil
		}
		log.WarnContext(ctx, "ignore corrupt cached layer", "diff_id", diffID.String(), "err", err)
	}

	compressed, err := gzipBytes(uncompressed)
	if err != nil {
		return nil, err
	}
	layer, err := layerFromGzip(compressed)
	if err != nil {
		return nil, err
	}
	if err := c.store(diffID, compressed); err != nil {
		// A cache that cannot be written only costs time on the next build.
		log.WarnContext(ctx, "store layer in cache", "diff_id", diffID.String(), "err", err)
	}
	return layer, nil
}

func layerFromGzip(compressed []byte) (v1.Layer, error) {
	layer, err := tarball.LayerFromOpener(bytesOpener(compressed), tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("read gzip layer: %w", err)
	}
	return layer, nil
}

func layerHasDiffID(layer v1.Layer, want v1.Hash) bool {
	got, err := layer.DiffID()
	return err == nil && got == want
}

func (c *layerCache) path(diffID v1.Hash) string {
	return filepath.Join(c.dir, diffID.Hex+cacheSuffix)
}

// load returns the cached compressed layer and marks the entry as used now.
func (c *layerCache) load(diffID v1.Hash) ([]byte, bool) {
	if c == nil {
		return nil, false
	}
	data, err := os.ReadFile(c.path(diffID))
	if err != nil {
		return nil, false
	}
	now := time.Now()
	_ = os.Chtimes(c.path(diffID), now, now) // Only pruning reads the time, so a failure is harmless.
	return data, true
}

func (c *layerCache) store(diffID v1.Hash, compressed []byte) error {
	if c == nil {
		return nil
	}
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return fmt.Errorf("create cache directory: %w", err)
	}
	tmp, err := os.CreateTemp(c.dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("create cache file: %w", err)
	}
	defer os.Remove(tmp.Name()) // No effect after the rename succeeded.

	if _, err := tmp.Write(compressed); err != nil {
		tmp.Close()
		return fmt.Errorf("write cache file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write cache file: %w", err)
	}
	if err := os.Rename(tmp.Name(), c.path(diffID)); err != nil {
		return fmt.Errorf("rename cache file: %w", err)
	}
	return nil
}

// prune removes cached layers and temporary files not used since maxAge ago and returns how many it removed.
func (c *layerCache) prune(maxAge time.Duration) (int, error) {
	if c == nil {
		return 0, nil
	}
	entries, err := os.ReadDir(c.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("list layer cache: %w", err)
	}

	cutoff := time.Now().Add(-maxAge)
	removed := 0
	var errs []error
	for _, e := range entries {
		// Temporary files outlive their writer only when it crashed.
		if !strings.HasSuffix(e.Name(), cacheSuffix) && !strings.HasPrefix(e.Name(), ".tmp-") {
			continue
		}
		info, err := e.Info()
		if err != nil || !info.ModTime().Before(cutoff) {
			continue
		}
		if err := os.Remove(filepath.Join(c.dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		removed++
	}
	if err := errors.Join(errs...); err != nil {
		return removed, fmt.Errorf("prune layer cache: %w", err)
	}
	return removed, nil
}
