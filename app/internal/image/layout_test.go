package image

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

func TestWriteLayout(t *testing.T) {
	t.Parallel()
	img, err := newTestBuilder(t, Config{Dir: newHelloModule(t)}).Build(context.Background(), helloService)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	dir := t.TempDir()
	if err := img.WriteLayout(dir); err != nil {
		t.Fatalf("WriteLayout: %v", err)
	}

	path, err := layout.FromPath(dir)
	if err != nil {
		t.Fatalf("open layout: %v", err)
	}
	root, err := path.ImageIndex()
	if err != nil {
		t.Fatalf("read layout index: %v", err)
	}
	manifest, err := root.IndexManifest()
	if err != nil {
		t.Fatalf("read layout index manifest: %v", err)
	}
	if got, want := len(manifest.Manifests), 1; got != want {
		t.Fatalf("layout entries = %d, want %d", got, want)
	}
	entry := manifest.Manifests[0]
	if diff := cmp.Diff(img.Digest(), entry.Digest); diff != "" {
		t.Errorf("layout index digest (-want +got):\n%s", diff)
	}
	if got, want := entry.Annotations["org.opencontainers.image.ref.name"], "localhost:5001/taskflow/hello"; got != want {
		t.Errorf("ref.name annotation = %q, want %q", got, want)
	}
	stored, err := root.ImageIndex(entry.Digest)
	if err != nil {
		t.Fatalf("read stored index: %v", err)
	}
	storedManifest, err := stored.IndexManifest()
	if err != nil {
		t.Fatalf("read stored index manifest: %v", err)
	}
	if got, want := len(storedManifest.Manifests), len(img.Platforms); got != want {
		t.Errorf("stored platforms = %d, want %d", got, want)
	}
}
