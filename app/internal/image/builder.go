package image

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/errgroup"
)

// OCI label keys set on every image config.
const (
	LabelSource   = "org.opencontainers.image.source"
	LabelRevision = "org.opencontainers.image.revision"
	LabelTitle    = "org.opencontainers.image.title"
)

// Service names one image and the main package it runs.
type Service struct {
	// Name is the image name under the namespace and the binary name, for example "api".
	// It must be a lower-case repository path component.
	Name string

	// Package is the main package to build, as go build accepts it relative to
	// [Config.Dir], for example "./app/cmd/api".
	Package string
}

// DefaultServices returns the three taskflow services, with packages relative to the module root.
func DefaultServices() []Service {
	return []Service{
		{Name: "api", Package: "./app/cmd/api"},
		{Name: "worker", Package: "./app/cmd/worker"},
		{Name: "monitor", Package: "./app/cmd/monitor"},
	}
}

var serviceNamePattern = regexp.MustCompile(`^[a-z0-9]+(?:[._-][a-z0-9]+)*$`)

// Builder builds service images. It is safe for concurrent use.
type Builder struct {
	cfg   Config
	cache *layerCache
	jobs  chan struct{} // One token per go build or compression step allowed to run.

	baseOnce  sync.Once
	baseLayer v1.Layer
	baseErr   error
}

// New returns a Builder for cfg after filling in defaults. It returns an error when a setting
// is invalid. It reads no files and runs no commands.
func New(cfg Config) (*Builder, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("image config: %w", err)
	}
	b := &Builder{cfg: cfg, jobs: make(chan struct{}, cfg.Jobs)}
	if !cfg.NoCache {
		b.cache = &layerCache{dir: cfg.CacheDir}
	}
	return b, nil
}

// Config returns the builder's settings with defaults filled in.
func (b *Builder) Config() Config {
	return b.cfg
}

// BuildAll builds the images of services concurrently and returns them in the same order.
// It pushes nothing. After a successful build it removes cache entries unused for
// [Config.CacheMaxAge].
func (b *Builder) BuildAll(ctx context.Context, services []Service) ([]*Image, error) {
	images := make([]*Image, len(services))
	g, gctx := errgroup.WithContext(ctx)
	for i, svc := range services {
		g.Go(func() error {
			img, err := b.Build(gctx, svc)
			images[i] = img
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}

	removed, err := b.cache.prune(b.cfg.CacheMaxAge)
	if err != nil {
		b.cfg.Logger.WarnContext(ctx, "prune layer cache", "err", err)
	}
	if removed > 0 {
		b.cfg.Logger.InfoContext(ctx, "pruned layer cache", "removed", removed)
	}
	return images, nil
}

// Build cross-compiles svc for every configured platform, builds one image per platform and
// joins them in an OCI image index. It computes the digests locally and pushes nothing.
// Errors name the service and platform, and a go build error includes the compiler output.
func (b *Builder) Build(ctx context.Context, svc Service) (*Image, error) {
	if !serviceNamePattern.MatchString(svc.Name) {
		return nil, fmt.Errorf("invalid service name %q: want lower-case letters and digits, optionally separated by '.', '_' or '-'", svc.Name)
	}
	if svc.Package == "" {
		return nil, fmt.Errorf("invalid service %q: missing main package", svc.Name)
	}
	repo, err := b.cfg.repository(svc.Name)
	if err != nil {
		return nil, fmt.Errorf("image repository of %q: %w", svc.Name, err)
	}
	base, err := b.base(ctx)
	if err != nil {
		return nil, err
	}

	platforms := make([]PlatformImage, len(b.cfg.Platforms))
	g, gctx := errgroup.WithContext(ctx)
	for i, p := range b.cfg.Platforms {
		g.Go(func() error {
			pi, err := b.buildPlatform(gctx, svc, p, base)
			if err != nil {
				return fmt.Errorf("build image %s for %s: %w", svc.Name, p.String(), err)
			}
			platforms[i] = pi
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}

	return newImage(svc, repo, platforms, b.cfg)
}

// base returns the layer shared by all images, built once per Builder.
func (b *Builder) base(ctx context.Context) (v1.Layer, error) {
	b.baseOnce.Do(func() {
		ca, err := os.ReadFile(b.cfg.CACertFile)
		if err != nil {
			b.baseErr = fmt.Errorf("read CA bundle: %w", err)
			return
		}
		tar, err := writeTar(baseEntries(ca), b.cfg.Created)
		if err != nil {
			b.baseErr = fmt.Errorf("base layer: %w", err)
			return
		}
		b.baseLayer, b.baseErr = b.cache.newLayer(ctx, b.cfg.Logger, tar)
	})
	return b.baseLayer, b.baseErr
}

func (b *Builder) buildPlatform(ctx context.Context, svc Service, p v1.Platform, base v1.Layer) (PlatformImage, error) {
	start := time.Now()

	// Compile and compress while holding a job token, so at most Config.Jobs heavy steps run.
	var app v1.Layer
	err := b.withJob(ctx, func() error {
		binary, err := goBuild(ctx, b.cfg.GoCommand, b.cfg.Dir, svc.Package, p)
		if err != nil {
			return err
		}
		tar, err := writeTar(appEntries(svc.Name, binary), b.cfg.Created)
		if err != nil {
			return fmt.Errorf("app layer: %w", err)
		}
		app, err = b.cache.newLayer(ctx, b.cfg.Logger, tar)
		return err
	})
	if err != nil {
		return PlatformImage{}, err
	}

	img, err := b.assemble(svc, p, base, app)
	if err != nil {
		return PlatformImage{}, err
	}
	pi, err := newPlatformImage(p, img)
	if err != nil {
		return PlatformImage{}, err
	}
	b.cfg.Logger.InfoContext(ctx, "built image",
		"image", svc.Name, "platform", p.String(), "digest", pi.Digest.String(),
		"size", pi.Size, "duration", time.Since(start))
	return pi, nil
}

// assemble stacks base and app on an empty OCI image and writes the config. Every field that
// mutate would otherwise leave at a zero or current value is set, so the digest is stable.
func (b *Builder) assemble(svc Service, p v1.Platform, base, app v1.Layer) (v1.Image, error) {
	created := v1.Time{Time: b.cfg.Created}

	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)

	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("read empty config: %w", err)
	}
	cf = cf.DeepCopy()
	cf.Created = created
	cf.OS = p.OS
	cf.Architecture = p.Architecture
	cf.Config = v1.Config{
		Entrypoint: []string{entrypoint(svc.Name)},
		User:       fmt.Sprintf("%d:%d", nonrootID, nonrootID),
		WorkingDir: "/",
		Labels:     b.labels(svc),
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("set config: %w", err)
	}

	img, err = mutate.Append(img,
		mutate.Addendum{Layer: base, History: v1.History{
			Created:   created,
			CreatedBy: "taskflow image: CA certificates, passwd, group, /tmp",
		}},
		mutate.Addendum{Layer: app, History: v1.History{
			Created:   created,
			CreatedBy: "taskflow image: go build " + svc.Package,
		}},
	)
	if err != nil {
		return nil, fmt.Errorf("append layers: %w", err)
	}
	return img, nil
}

func (b *Builder) labels(svc Service) map[string]string {
	labels := map[string]string{LabelTitle: svc.Name}
	if b.cfg.Source != "" {
		labels[LabelSource] = b.cfg.Source
	}
	if b.cfg.Revision != "" {
		labels[LabelRevision] = b.cfg.Revision
	}
	return labels
}

// withJob runs fn once a job token is free, or returns the context's error first.
func (b *Builder) withJob(ctx context.Context, fn func() error) error {
	select {
	case b.jobs <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-b.jobs }()
	return fn()
}
