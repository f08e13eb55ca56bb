package image

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Image is the built, not yet pushed, multi-platform image of one service. Its fields are
// read-only after [Builder.Build] returns. Push is safe for concurrent use, but two WriteLayout
// calls on one directory are not.
type Image struct {
	// Service is the service the image was built from.
	Service Service

	// Ref is the image index reference by digest, <registry>/<namespace>/<service>@sha256:...,
	// the form a Deployment uses.
	Ref name.Digest

	// Index is the OCI image index with one image per platform.
	Index v1.ImageIndex

	// Platforms describes the image of each platform, in Config.Platforms order.
	Platforms []PlatformImage

	digest    v1.Hash
	keychain  authn.Keychain
	transport http.RoundTripper
	log       *slog.Logger
}

// PlatformImage is the image of one platform inside an [Image] index.
type PlatformImage struct {
	// Platform is the OS and architecture the binary was built for.
	Platform v1.Platform

	// Digest is the digest of the platform's image manifest.
	Digest v1.Hash

	// Size is the compressed size in bytes that a pull transfers: config plus layers, without
	// the manifests.
	Size int64

	// Image is the image itself.
	Image v1.Image
}

func newPlatformImage(p v1.Platform, img v1.Image) (PlatformImage, error) {
	digest, err := img.Digest()
	if err != nil {
		return PlatformImage{}, fmt.Errorf("image digest: %w", err)
	}
	manifest, err := img.Manifest()
	if err != nil {
		return PlatformImage{}, fmt.Errorf("image manifest: %w", err)
	}
	size := manifest.Config.Size
	for _, l := range manifest.Layers {
		size += l.Size
	}
	return PlatformImage{Platform: p, Digest: digest, Size: size, Image: img}, nil
}

func newImage(svc Service, repo name.Repository, platforms []PlatformImage, cfg Config) (*Image, error) {
	adds := make([]mutate.IndexAddendum, len(platforms))
	for i, pi := range platforms {
		p := pi.Platform
		adds[i] = mutate.IndexAddendum{
			Add:        pi.Image,
			Descriptor: v1.Descriptor{Platform: &p},
		}
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	idx = mutate.AppendManifests(idx, adds...)

	digest, err := idx.Digest()
	if err != nil {
		return nil, fmt.Errorf("index digest of %s: %w", svc.Name, err)
	}
	return &Image{
		Service:   svc,
		Ref:       repo.Digest(digest.String()),
		Index:     idx,
		Platforms: platforms,
		digest:    digest,
		keychain:  cfg.Keychain,
		transport: cfg.Transport,
		log:       cfg.Logger,
	}, nil
}

// Digest returns the digest of the image index.
func (img *Image) Digest() v1.Hash {
	return img.digest
}

// Push uploads the index, every platform image and their blobs to ref, skipping blobs the
// registry already has. ref is normally img.Ref, which stores the index untagged, or a tag in
// the same or another repository. A digest reference must carry the index digest. Credentials
// come from Config.Keychain, by default the user's Docker config.
func (img *Image) Push(ctx context.Context, ref name.Reference) error {
	if d, ok := ref.(name.Digest); ok && d.DigestStr() != img.Ref.DigestStr() {
		return fmt.Errorf("push %s: reference digest differs from the built index digest %s", ref, img.Ref.DigestStr())
	}

	start := time.Now()
	opts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(img.keychain),
	}
	if img.transport != nil {
		opts = append(opts, remote.WithTransport(img.transport))
	}
	if err := remote.WriteIndex(ref, img.Index, opts...); err != nil {
		return fmt.Errorf("push %s: %w", ref, err)
	}
	img.log.InfoContext(ctx, "pushed image",
		"image", img.Service.Name, "ref", ref.String(), "digest", img.Ref.DigestStr(),
		"duration", time.Since(start))
	return nil
}

// WriteLayout appends the index to the OCI image layout in dir, creating the layout when dir
// holds none, and annotates it with the reference so tools can find it by name.
func (img *Image) WriteLayout(dir string) error {
	path, err := layout.FromPath(dir)
	if err != nil {
		path, err = layout.Write(dir, empty.Index)
		if err != nil {
			return fmt.Errorf("create OCI layout %s: %w", dir, err)
		}
	}
	ann := layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": img.Ref.Context().String(),
	})
	if err := path.AppendIndex(img.Index, ann); err != nil {
		return fmt.Errorf("write %s to OCI layout %s: %w", img.Service.Name, dir, err)
	}
	return nil
}
