package image

import (
	"archive/tar"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// helloService is the test main package, built from the root of the module that
// newHelloModule creates.
var helloService = Service{Name: "hello", Package: "."}

// newHelloModule copies testdata/hello into a fresh module directory and returns the directory.
// The module path is fixed, so two copies build byte-identical binaries.
func newHelloModule(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, file := range []string{"main.go", "greeting.go"} {
		data, err := os.ReadFile(filepath.Join("testdata", "hello", file))
		if err != nil {
			t.Fatalf("read test main: %v", err)
		}
		writeFile(t, filepath.Join(dir, file), string(data))
	}
	writeFile(t, filepath.Join(dir, "go.mod"), "module example.com/hello\n\ngo 1.26\n")
	return dir
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
}

// newTestBuilder returns a builder for cfg whose layer cache lives in the test's own directory,
// so no test reads a layer that another run compressed.
func newTestBuilder(t *testing.T, cfg Config) *Builder {
	t.Helper()
	if cfg.CacheDir == "" && !cfg.NoCache {
		cfg.CacheDir = t.TempDir()
	}
	b, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return b
}

// testRegistry is an in-process registry served on 127.0.0.1 that counts the requests it gets.
type testRegistry struct {
	host     string // host:port of the server
	requests atomic.Int64
}

// startRegistry serves go-containerregistry's registry on a loopback port until the test ends.
// wrap, when not nil, wraps the registry handler, for example to require credentials.
func startRegistry(t *testing.T, wrap func(http.Handler) http.Handler) *testRegistry {
	t.Helper()
	reg := &testRegistry{}
	var handler http.Handler = registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	if wrap != nil {
		handler = wrap(handler)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reg.requests.Add(1)
		handler.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	reg.host = strings.TrimPrefix(srv.URL, "http://")
	return reg
}

// fileEntry is one entry of an image's flattened file system.
type fileEntry struct {
	Mode  int64
	UID   int
	GID   int
	Uname string
	Gname string
	Mtime int64
	Dir   bool
	Data  []byte
}

// readFileSystem flattens img's layers and returns every entry by its path without a leading
// or trailing slash.
func readFileSystem(t *testing.T, img v1.Image) map[string]fileEntry {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()

	files := make(map[string]fileEntry)
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("read image file system: %v", err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("read %s: %v", hdr.Name, err)
		}
		files[strings.Trim(hdr.Name, "/")] = fileEntry{
			Mode:  hdr.Mode,
			UID:   hdr.Uid,
			GID:   hdr.Gid,
			Uname: hdr.Uname,
			Gname: hdr.Gname,
			Mtime: hdr.ModTime.Unix(),
			Dir:   hdr.Typeflag == tar.TypeDir,
			Data:  data,
		}
	}
	return files
}

// platformDigests returns the manifest digest of every platform, keyed by platform.
func platformDigests(img *Image) map[string]string {
	digests := make(map[string]string, len(img.Platforms))
	for _, p := range img.Platforms {
		digests[p.Platform.String()] = p.Digest.String()
	}
	return digests
}
