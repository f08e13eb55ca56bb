package image

import (
	"context"
	"encoding/base64"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// maxImageSize is the largest compressed size, config plus layers, allowed per platform image.
const maxImageSize = 25 << 20

func TestPushPullBack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	reg := startRegistry(t, nil)
	b := newTestBuilder(t, Config{
		Dir:      newHelloModule(t),
		Registry: reg.host,
		Source:   "https://example.com/taskflow",
		Revision: "0123456789abcdef",
	})

	img, err := b.Build(ctx, helloService)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	if got := reg.requests.Load(); got != 0 {
		t.Fatalf("Build sent %d requests to the registry, want 0", got)
	}
	if err := img.Push(ctx, img.Ref); err != nil {
		t.Fatalf("Push: %v", err)
	}

	pulled := pullIndex(t, img.Ref)
	if got, want := pulled.mediaType, types.OCIImageIndex; got != want {
		t.Errorf("index media type = %s, want %s", got, want)
	}
	if diff := cmp.Diff([]string{"linux/amd64", "linux/arm64"}, pulled.platformNames()); diff != "" {
		t.Errorf("index platforms (-want +got):\n%s", diff)
	}
	for _, p := range pulled.images {
		t.Run(p.platform.String(), func(t *testing.T) {
			checkServiceImage(t, p, "hello", map[string]string{
				LabelSource:   "https://example.com/taskflow",
				LabelRevision: "0123456789abcdef",
				LabelTitle:    "hello",
			})
			checkHelloFiles(t, p)
		})
	}
}

// TestPushDockerConfigCredentials changes DOCKER_CONFIG for the whole process, so it cannot run
// in parallel with other tests.
func TestPushDockerConfigCredentials(t *testing.T) {
	ctx := context.Background()
	const user, password = "builder", "s3cret"
	reg := startRegistry(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if u, p, ok := r.BasicAuth(); !ok || u != user || p != password {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				http.Error(w, "authentication required", http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, r)
		})
	})

	configDir := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
	writeFile(t, filepath.Join(configDir, "config.json"),
		`{"auths": {"`+reg.host+`": {"auth": "`+auth+`"}}}`)
	t.Setenv("DOCKER_CONFIG", configDir)

	// The default keychain reads DOCKER_CONFIG when Push resolves credentials.
	img, err := newTestBuilder(t, Config{Dir: newHelloModule(t), Registry: reg.host}).Build(ctx, helloService)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	if err := img.Push(ctx, img.Ref); err != nil {
		t.Fatalf("Push with Docker config credentials: %v", err)
	}
	if _, err := remote.Head(img.Ref, remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
		t.Errorf("pushed index not found: %v", err)
	}

	anonymous, err := newTestBuilder(t, Config{
		Dir:      newHelloModule(t),
		Registry: reg.host,
		Keychain: authn.NewMultiKeychain(),
	}).Build(ctx, helloService)
	if err != nil {
		t.Fatalf("Build without credentials: %v", err)
	}
	err = anonymous.Push(ctx, anonymous.Ref)
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("Push without credentials error = %v, want a 401 Unauthorized error", err)
	}
}

func TestPushRejectsOtherDigest(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	reg := startRegistry(t, nil)
	img, err := newTestBuilder(t, Config{Dir: newHelloModule(t), Registry: reg.host}).Build(ctx, helloService)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	other := img.Ref.Context().Digest("sha256:" + strings.Repeat("0", 64))

	err = img.Push(ctx, other)
	if err == nil || !strings.Contains(err.Error(), "reference digest differs") {
		t.Errorf("Push error = %v, want a digest mismatch", err)
	}
	if got := reg.requests.Load(); got != 0 {
		t.Errorf("rejected Push sent %d requests, want 0", got)
	}
}

func TestPushTag(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	reg := startRegistry(t, nil)
	img, err := newTestBuilder(t, Config{Dir: newHelloModule(t), Registry: reg.host}).Build(ctx, helloService)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	tag := img.Ref.Context().Tag("dev")
	if err := img.Push(ctx, tag); err != nil {
		t.Fatalf("Push %s: %v", tag, err)
	}
	desc, err := remote.Head(tag)
	if err != nil {
		t.Fatalf("Head %s: %v", tag, err)
	}
	if diff := cmp.Diff(img.Digest().String(), desc.Digest.String()); diff != "" {
		t.Errorf("tag digest (-want +got):\n%s", diff)
	}
}

// TestServiceImages builds and pushes the real service images whose main package exists.
// Cross-compiling their dependencies for two platforms takes minutes on a cold build cache.
func TestServiceImages(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds every service for two platforms; run without -short")
	}
	ctx := context.Background()
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatalf("module root: %v", err)
	}
	var services []Service
	for _, svc := range DefaultServices() {
		if files, _ := filepath.Glob(filepath.Join(root, svc.Package, "*.go")); len(files) > 0 {
			services = append(services, svc)
		}
	}
	if len(services) == 0 {
		t.Skip("no service main package exists yet under app/cmd")
	}

	reg := startRegistry(t, nil)
	images, err := newTestBuilder(t, Config{Dir: root, Registry: reg.host}).BuildAll(ctx, services)
	if err != nil {
		t.Fatalf("BuildAll: %v", err)
	}
	for _, img := range images {
		t.Run(img.Service.Name, func(t *testing.T) {
			if err := img.Push(ctx, img.Ref); err != nil {
				t.Fatalf("Push: %v", err)
			}
			pulled := pullIndex(t, img.Ref)
			if diff := cmp.Diff([]string{"linux/amd64", "linux/arm64"}, pulled.platformNames()); diff != "" {
				t.Errorf("index platforms (-want +got):\n%s", diff)
			}
			for _, p := range pulled.images {
				checkServiceImage(t, p, img.Service.Name, map[string]string{LabelTitle: img.Service.Name})
			}
		})
	}
}

// pulledIndex is an image index read back from a registry.
type pulledIndex struct {
	mediaType types.MediaType
	images    []pulledImage
}

// pulledImage is one platform image read back from a registry.
type pulledImage struct {
	platform v1.Platform
	image    v1.Image
	config   *v1.ConfigFile
	manifest *v1.Manifest
}

func (p pulledIndex) platformNames() []string {
	names := make([]string, len(p.images))
	for i, img := range p.images {
		names[i] = img.platform.String()
	}
	return names
}

// pullIndex reads the index at ref and every image it lists, checking that the registry
// returns the digest the builder computed.
func pullIndex(t *testing.T, ref name.Digest) pulledIndex {
	t.Helper()
	idx, err := remote.Index(ref)
	if err != nil {
		t.Fatalf("pull index %s: %v", ref, err)
	}
	digest, err := idx.Digest()
	if err != nil {
		t.Fatalf("index digest: %v", err)
	}
	if got, want := digest.String(), ref.DigestStr(); got != want {
		t.Errorf("pulled index digest = %s, want %s", got, want)
	}
	manifest, err := idx.IndexManifest()
	if err != nil {
		t.Fatalf("index manifest: %v", err)
	}
	mediaType, err := idx.MediaType()
	if err != nil {
		t.Fatalf("index media type: %v", err)
	}

	pulled := pulledIndex{mediaType: mediaType}
	for _, desc := range manifest.Manifests {
		if desc.Platform == nil {
			t.Fatalf("index entry %s has no platform", desc.Digest)
		}
		img, err := remote.Image(ref.Context().Digest(desc.Digest.String()))
		if err != nil {
			t.Fatalf("pull image %s: %v", desc.Digest, err)
		}
		config, err := img.ConfigFile()
		if err != nil {
			t.Fatalf("config of %s: %v", desc.Digest, err)
		}
		m, err := img.Manifest()
		if err != nil {
			t.Fatalf("manifest of %s: %v", desc.Digest, err)
		}
		pulled.images = append(pulled.images, pulledImage{platform: *desc.Platform, image: img, config: config, manifest: m})
	}
	return pulled
}

// checkServiceImage checks the config and size that every service image shares.
func checkServiceImage(t *testing.T, p pulledImage, service string, wantLabels map[string]string) {
	t.Helper()
	if diff := cmp.Diff([]string{"/app/" + service}, p.config.Config.Entrypoint); diff != "" {
		t.Errorf("entrypoint (-want +got):\n%s", diff)
	}
	if got, want := p.config.Config.User, "65532:65532"; got != want {
		t.Errorf("user = %q, want %q", got, want)
	}
	if got, want := p.config.Config.WorkingDir, "/"; got != want {
		t.Errorf("working directory = %q, want %q", got, want)
	}
	if diff := cmp.Diff(wantLabels, p.config.Config.Labels); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
	if got, want := p.config.OS+"/"+p.config.Architecture, p.platform.String(); got != want {
		t.Errorf("config platform = %s, want the index platform %s", got, want)
	}
	if got := p.config.Created.Unix(); got != 0 {
		t.Errorf("created = %s, want the Unix epoch", p.config.Created.Time)
	}
	if got, want := p.manifest.MediaType, types.OCIManifestSchema1; got != want {
		t.Errorf("manifest media type = %s, want %s", got, want)
	}

	size := p.manifest.Config.Size
	for _, l := range p.manifest.Layers {
		size += l.Size
	}
	if size >= maxImageSize {
		t.Errorf("compressed size = %d bytes, want under %d", size, maxImageSize)
	}
	t.Logf("%s %s: %d compressed bytes", service, p.platform.String(), size)
}

// checkHelloFiles checks the file system of a hello image entry by entry, and runs the binary
// when the image platform matches the test machine.
func checkHelloFiles(t *testing.T, p pulledImage) {
	t.Helper()
	files := readFileSystem(t, p.image)

	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	wantNames := []string{
		"app", "app/hello",
		"etc", "etc/group", "etc/passwd", "etc/ssl", "etc/ssl/certs", "etc/ssl/certs/ca-certificates.crt",
		"tmp",
	}
	if diff := cmp.Diff(wantNames, names); diff != "" {
		t.Errorf("image files (-want +got):\n%s", diff)
	}

	for _, n := range names {
		f := files[n]
		if f.UID != 0 || f.GID != 0 || f.Uname != "root" || f.Gname != "root" || f.Mtime != 0 {
			t.Errorf("%s owner %d:%d (%s:%s) mtime %d, want 0:0 (root:root) mtime 0", n, f.UID, f.GID, f.Uname, f.Gname, f.Mtime)
		}
	}
	if got, want := files["tmp"].Mode, int64(0o1777); got != want {
		t.Errorf("/tmp mode = %o, want %o", got, want)
	}
	if got, want := files["app/hello"].Mode, int64(0o755); got != want {
		t.Errorf("/app/hello mode = %o, want %o", got, want)
	}
	if passwd := string(files["etc/passwd"].Data); !strings.Contains(passwd, "\nnonroot:x:65532:65532:") {
		t.Errorf("/etc/passwd has no nonroot user 65532:\n%s", passwd)
	}
	if group := string(files["etc/group"].Data); !strings.Contains(group, "\nnonroot:x:65532:") {
		t.Errorf("/etc/group has no nonroot group 65532:\n%s", group)
	}
	ca, err := os.ReadFile(DefaultCACertFile)
	if err != nil {
		t.Fatalf("read host CA bundle: %v", err)
	}
	if !slices.Equal(ca, files["etc/ssl/certs/ca-certificates.crt"].Data) {
		t.Errorf("CA bundle in the image differs from %s", DefaultCACertFile)
	}

	if p.platform.OS != runtime.GOOS || p.platform.Architecture != runtime.GOARCH {
		return
	}
	binary := filepath.Join(t.TempDir(), "hello")
	if err := os.WriteFile(binary, files["app/hello"].Data, 0o755); err != nil {
		t.Fatalf("write binary: %v", err)
	}
	out, err := exec.Command(binary).CombinedOutput()
	if err != nil {
		t.Fatalf("run binary from image: %v: %s", err, out)
	}
	if diff := cmp.Diff("hello from "+p.platform.String()+"\n", string(out)); diff != "" {
		t.Errorf("binary output (-want +got):\n%s", diff)
	}
}
