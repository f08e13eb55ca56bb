// Command imagebuild builds the taskflow service images without a Docker daemon and prints their
// digest references. With -push it also uploads them to the registry.
//
// Run it from the module root:
//
//	go run ./app/cmd/imagebuild                      # build, print references, push nothing
//	go run ./app/cmd/imagebuild -push                # build and push to localhost:5001
//	go run ./app/cmd/imagebuild -services api -push -tag dev
//	go run ./app/cmd/imagebuild -json                # the same results as a JSON array
//
// SOURCE_DATE_EPOCH, when set, fixes the image creation time. Registry credentials come from the
// Docker config ($DOCKER_CONFIG/config.json or ~/.docker/config.json).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/taskflow-dev/taskflow/app/internal/image"
	"github.com/taskflow-dev/taskflow/app/internal/logging"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	log, err := logging.New(os.Stderr, "info", "imagebuild")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := run(ctx, log, os.Args[1:], os.Getenv, os.Stdout); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			log.ErrorContext(ctx, "imagebuild failed", "err", err)
		}
		os.Exit(1)
	}
}

// options are the command-line settings.
type options struct {
	dir       string
	registry  string
	namespace string
	services  string
	platforms string
	source    string
	revision  string
	push      bool
	tag       string
	layout    string
	noCache   bool
	json      bool
}

func parseOptions(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("imagebuild", flag.ContinueOnError)
	fs.StringVar(&o.dir, "dir", ".", "module root where go build runs")
	fs.StringVar(&o.registry, "registry", image.DefaultRegistry, "registry host[:port] the references point to")
	fs.StringVar(&o.namespace, "namespace", image.DefaultNamespace, "repository path between the registry and the service name")
	fs.StringVar(&o.services, "services", "api,worker,monitor", "comma-separated services to build")
	fs.StringVar(&o.platforms, "platforms", "linux/amd64,linux/arm64", "comma-separated platforms of the image index")
	fs.StringVar(&o.source, "source", "", "org.opencontainers.image.source label, a repository URL; empty omits it")
	fs.StringVar(&o.revision, "revision", "auto",
		`org.opencontainers.image.revision label; "auto" takes the last commit that changed app, go.mod or go.sum, or omits the label outside a git work tree; empty omits it`)
	fs.BoolVar(&o.push, "push", false, "push the images; without it nothing is sent to the registry")
	fs.StringVar(&o.tag, "tag", "", "with -push, push under this tag instead of by digest only")
	fs.StringVar(&o.layout, "layout", "", "also write the images into the OCI image layout in this directory")
	fs.BoolVar(&o.noCache, "no-cache", false, "compress every layer again instead of reading the layer cache")
	fs.BoolVar(&o.json, "json", false, "print the results as a JSON array instead of a table")
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	if fs.NArg() > 0 {
		return options{}, fmt.Errorf("unexpected arguments %q: imagebuild takes flags only", fs.Args())
	}
	if o.tag != "" && !o.push {
		return options{}, errors.New("-tag needs -push")
	}
	return o, nil
}

// run builds the selected services, prints one reference per service followed by one line per
// platform, and pushes when asked.
func run(ctx context.Context, log *slog.Logger, args []string, getenv func(string) string, stdout io.Writer) error {
	o, err := parseOptions(args)
	if err != nil {
		return err
	}
	cfg, services, err := o.config(ctx, log, getenv)
	if err != nil {
		return err
	}
	cfg.Logger = log
	log.InfoContext(ctx, "imagebuild starting",
		"registry", cfg.Registry, "namespace", cfg.Namespace, "revision", cfg.Revision,
		"created", cfg.Created, "push", o.push)

	builder, err := image.New(cfg)
	if err != nil {
		return err
	}
	images, err := builder.BuildAll(ctx, services)
	if err != nil {
		return err
	}

	results := make([]result, 0, len(images))
	for _, img := range images {
		if err := publish(ctx, o, img); err != nil {
			return err
		}
		results = append(results, newResult(img, o.push))
	}
	return printResults(stdout, results, o.json)
}

// result is the outcome for one service, the element of the -json output array.
type result struct {
	Service   string           `json:"service"`
	Ref       string           `json:"ref"`
	Digest    string           `json:"digest"`
	Pushed    bool             `json:"pushed"`
	Platforms []platformResult `json:"platforms"`
}

// platformResult describes one platform image. Size is the compressed size in bytes.
type platformResult struct {
	Platform string `json:"platform"`
	Digest   string `json:"digest"`
	Size     int64  `json:"size"`
}

func newResult(img *image.Image, pushed bool) result {
	r := result{Service: img.Service.Name, Ref: img.Ref.String(), Digest: img.Digest().String(), Pushed: pushed}
	for _, p := range img.Platforms {
		r.Platforms = append(r.Platforms, platformResult{Platform: p.Platform.String(), Digest: p.Digest.String(), Size: p.Size})
	}
	return r
}

// printResults writes one reference line per service, each followed by one line per platform,
// or the whole list as JSON.
func printResults(w io.Writer, results []result, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(results); err != nil {
			return fmt.Errorf("write JSON output: %w", err)
		}
		return nil
	}
	for _, r := range results {
		fmt.Fprintf(w, "%s\t%s\n", r.Service, r.Ref)
		for _, p := range r.Platforms {
			fmt.Fprintf(w, "  %s\t%s\t%.1f MB\n", p.Platform, p.Digest, float64(p.Size)/1e6)
		}
	}
	return nil
}

// publish writes img to the OCI layout and the registry, as the options ask.
func publish(ctx context.Context, o options, img *image.Image) error {
	if o.layout != "" {
		if err := img.WriteLayout(o.layout); err != nil {
			return err
		}
	}
	if !o.push {
		return nil
	}
	var ref name.Reference = img.Ref
	if o.tag != "" {
		ref = img.Ref.Context().Tag(o.tag)
	}
	return img.Push(ctx, ref)
}

// config turns the options into the builder settings and the service list.
func (o options) config(ctx context.Context, log *slog.Logger, getenv func(string) string) (image.Config, []image.Service, error) {
	created, err := image.SourceDateEpoch(getenv("SOURCE_DATE_EPOCH"))
	if err != nil {
		return image.Config{}, nil, err
	}
	cfg := image.Config{
		Dir:       o.dir,
		Registry:  o.registry,
		Namespace: o.namespace,
		Source:    o.source,
		Revision:  o.revision,
		Created:   created,
		NoCache:   o.noCache,
	}
	if o.revision == "auto" {
		// A source tree without git history still builds, only without the label.
		cfg.Revision, err = image.SourceRevision(ctx, o.dir, "app", "go.mod", "go.sum")
		if err != nil {
			log.WarnContext(ctx, "omit revision label: set -revision to a commit to keep it", "err", err)
		}
	}

	for _, s := range splitList(o.platforms) {
		p, err := v1.ParsePlatform(s)
		if err != nil {
			return image.Config{}, nil, fmt.Errorf("invalid platform %q: %w", s, err)
		}
		cfg.Platforms = append(cfg.Platforms, *p)
	}

	known := image.DefaultServices()
	var services []image.Service
	for _, n := range splitList(o.services) {
		i := slices.IndexFunc(known, func(s image.Service) bool { return s.Name == n })
		if i < 0 {
			return image.Config{}, nil, fmt.Errorf("unknown service %q: want api, worker or monitor", n)
		}
		services = append(services, known[i])
	}
	if len(services) == 0 {
		return image.Config{}, nil, errors.New("no services selected: set -services")
	}
	return cfg, services, nil
}

func splitList(s string) []string {
	var items []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			items = append(items, item)
		}
	}
	return items
}
