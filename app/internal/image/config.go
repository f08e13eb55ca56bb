package image

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Default values that [Config.WithDefaults] fills in.
const (
	DefaultRegistry    = "localhost:5001"
	DefaultNamespace   = "taskflow"
	DefaultCACertFile  = "/etc/ssl/certs/ca-certificates.crt"
	DefaultCacheMaxAge = 7 * 24 * time.Hour
)

// Config holds the settings of a [Builder]. The zero value of every field selects its default.
type Config struct {
	// Dir is the directory where go build runs, normally the root of the Go module that contains
	// the service packages. Default: the current directory.
	Dir string

	// Registry is the registry host, with an optional port, that image references point to.
	// Hosts named localhost or with a loopback address are reached over plain HTTP.
	// Default: DefaultRegistry, the kind local registry.
	Registry string

	// Namespace is the repository path between the registry and the service name, so an image is
	// named <Registry>/<Namespace>/<service>. It may contain slashes. Default: DefaultNamespace.
	Namespace string

	// Platforms lists the platforms to build, in index order. Only linux/<arch> without a
	// variant is supported, because GOARM and GOAMD64 levels are not derived from variants.
	// Default: linux/amd64 and linux/arm64.
	Platforms []v1.Platform

	// Source is the org.opencontainers.image.source label, a URL of the source repository.
	// Empty omits the label.
	Source string

	// Revision is the org.opencontainers.image.revision label, normally from [SourceRevision].
	// Any change to it changes every digest. Empty omits the label.
	Revision string

	// Created is the image creation time and the mtime of every file in the image.
	// Default: the Unix epoch. Use [SourceDateEpoch] to honour SOURCE_DATE_EPOCH.
	Created time.Time

	// CACertFile is the PEM bundle copied to /etc/ssl/certs/ca-certificates.crt in the image.
	// Default: DefaultCACertFile, the Debian and Alpine location.
	CACertFile string

	// CacheDir stores compressed layers between builds. Default: taskflow/image-layers under
	// os.UserCacheDir, or no cache when that directory is unknown.
	CacheDir string

	// NoCache disables the layer cache, so every layer is compressed again.
	NoCache bool

	// CacheMaxAge is how long a cached layer may stay unused before BuildAll removes it.
	// Default: DefaultCacheMaxAge (7 days).
	CacheMaxAge time.Duration

	// Jobs is the maximum number of go build and compression steps run at once. Each go build
	// already uses every core, so more jobs mostly overlap linking with compression.
	// Default: runtime.GOMAXPROCS(0).
	Jobs int

	// GoCommand is the go binary that builds the services. Default: "go" from PATH.
	GoCommand string

	// Keychain supplies registry credentials to Push. Default: authn.DefaultKeychain.
	Keychain authn.Keychain

	// Transport carries registry requests. Default: go-containerregistry's remote.DefaultTransport.
	Transport http.RoundTripper

	// Logger receives one line per built platform image and per push. Default: discard.
	Logger *slog.Logger
}

// WithDefaults returns a copy of c with every unset field set to its default. It reads
// os.UserCacheDir when CacheDir is empty and NoCache is false.
func (c Config) WithDefaults() Config {
	if c.Dir == "" {
		c.Dir = "."
	}
	if c.Registry == "" {
		c.Registry = DefaultRegistry
	}
	if c.Namespace == "" {
		c.Namespace = DefaultNamespace
	}

	if len(c.Platforms) == 0 {
		c.Platforms = []v1.Platform{
			{OS: "linux", Architecture: "amd64"},
			{OS: "linux", Architecture: "arm64"},
		}
	}
	if c.Created.IsZero() {
		c.Created = time.Unix(0, 0)
	}
	c.Created = c.Created.UTC()

	if c.CACertFile == "" {
		c.CACertFile = DefaultCACertFile
	}
	if c.CacheDir == "" && !c.NoCache {
		if base, err := os.UserCacheDir(); err == nil {
			c.CacheDir = filepath.Join(base, "taskflow", "image-layers")
		} else {
			c.NoCache = true
		}
	}

	if c.CacheMaxAge == 0 {
		c.CacheMaxAge = DefaultCacheMaxAge
	}
	if c.Jobs == 0 {
		c.Jobs = runtime.GOMAXPROCS(0)
	}
	if c.GoCommand == "" {
		c.GoCommand = "go"
	}

	if c.Keychain == nil {
		c.Keychain = authn.DefaultKeychain
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

func (c Config) validate() error {
	var errs []error
	if _, err := c.repository("svc"); err != nil {
		errs = append(errs, fmt.Errorf("invalid registry %q or namespace %q: %w", c.Registry, c.Namespace, err))
	}
	seen := make(map[string]bool, len(c.Platforms))
	for _, p := range c.Platforms {
		if p.OS != "linux" || p.Architecture == "" || p.Variant != "" || p.OSVersion != "" || len(p.OSFeatures) > 0 || len(p.Features) > 0 {
			errs = append(errs, fmt.Errorf("unsupported platform %q: only linux/<arch> without a variant is supported", p.String()))
		}
		if seen[p.String()] {
			errs = append(errs, fmt.Errorf("duplicate platform %q", p.String()))
		}
		seen[p.String()] = true
	}
	if c.Jobs < 1 {
		errs = append(errs, fmt.Errorf("invalid jobs %d: must be at least 1", c.Jobs))
	}
	if c.CacheMaxAge < 0 {
		errs = append(errs, fmt.Errorf("invalid cache max age %s: must not be negative", c.CacheMaxAge))
	}
	if c.Created.Before(time.Unix(0, 0)) {
		errs = append(errs, fmt.Errorf("invalid created time %s: must not be before the Unix epoch", c.Created))
	}
	return errors.Join(errs...)
}

// repository returns the repository of one service image, marked insecure (plain HTTP allowed)
// when the registry is on localhost or a loopback address.
func (c Config) repository(service string) (name.Repository, error) {
	opts := []name.Option{name.StrictValidation}
	if isLoopback(c.Registry) {
		opts = append(opts, name.Insecure)
	}
	return name.NewRepository(c.Registry+"/"+c.Namespace+"/"+service, opts...)
}

func isLoopback(registry string) bool {
	host := registry
	if h, _, err := net.SplitHostPort(registry); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// SourceDateEpoch parses the value of the SOURCE_DATE_EPOCH variable, a decimal count of seconds
// since the Unix epoch. An empty value returns the Unix epoch itself.
func SourceDateEpoch(value string) (time.Time, error) {
	if value == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	seconds, err := strconv.ParseInt(value, 10, 64)
	if err != nil || seconds < 0 {
		return time.Time{}, fmt.Errorf("invalid SOURCE_DATE_EPOCH %q: want a non-negative integer count of seconds", value)
	}
	return time.Unix(seconds, 0).UTC(), nil
}
