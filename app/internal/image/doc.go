// Package image builds the service container images without a Docker daemon and pushes them to
// a registry, using go-containerregistry.
//
// # What an image contains
//
// Each image has two layers on an empty base:
//
//   - a base layer with /etc/ssl/certs/ca-certificates.crt copied from the build machine,
//     /etc/passwd and /etc/group that define root and the user nonroot (65532:65532), and /tmp
//     with mode 1777;
//   - an application layer with the statically linked service binary at /app/<service>.
//
// The image config runs /app/<service> as 65532:65532 in the working directory /, and carries
// the OCI labels org.opencontainers.image.source, .revision and .title. No SSL_CERT_FILE is set,
// because Go's crypto/x509 reads /etc/ssl/certs/ca-certificates.crt on Linux by default. The
// base layer is the same for every service, so a registry stores it once.
//
// One image is built per platform (linux/amd64 and linux/arm64 by default) and the images are
// joined into an OCI image index. Deployments reference the index by digest, and the container
// runtime picks the image that matches its node.
//
// # Reproducibility
//
// The same source, Go toolchain and CA bundle give byte-identical images, so identical digests:
//
//   - the binary is built with CGO_ENABLED=0, -trimpath, -buildvcs=false and
//     -ldflags "-s -w -buildid=", with GOAMD64=v1, GOARM64=v8.0 and an empty GOFLAGS, so neither
//     the checkout path nor the caller's environment reaches the binary;
//   - tar entries are sorted by name and have a fixed mtime, uid, gid, user and group name;
//   - layers are gzip-compressed with an empty gzip header (no name, mtime 0);
//   - the config's created time and history times are [Config.Created], which callers set
//     from SOURCE_DATE_EPOCH (see [SourceDateEpoch]) or leave at the Unix epoch.
//
// A different Go version or a different CA bundle on the build machine changes the digests.
//
// # Building versus pushing
//
// [Builder.Build] computes every digest locally and sends nothing over the network, so a
// Pulumi preview can reference images by digest without pushing them. [Image.Push] uploads the
// index, its images and their blobs. Credentials come from [authn.DefaultKeychain], which reads
// the user's Docker config ($DOCKER_CONFIG/config.json or ~/.docker/config.json) when present.
// Registries on localhost or a loopback address are reached over plain HTTP.
//
// # Cache
//
// go build reuses its own build cache for compiled packages but relinks the binary each time.
// Gzip at the highest level is the other large cost, so compressed layers are kept on disk,
// keyed by the SHA-256 of the uncompressed tar. An unchanged binary therefore costs a link and
// a hash, not a recompression. Entries unused for [Config.CacheMaxAge] are removed after each
// [Builder.BuildAll].
package image
