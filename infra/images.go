package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// ImagesConfig selects the image each service runs. With Build on (the default) the program
// builds the images from source and references them by digest. With Build off it uses the
// API, Worker and Monitor references as given.
type ImagesConfig struct {
	// API defaults to "localhost:5001/taskflow/api:dev". Build replaces it with a digest reference.
	API string `json:"api"`
	// Worker defaults to "localhost:5001/taskflow/worker:dev". Build replaces it with a digest reference.
	Worker string `json:"worker"`
	// Monitor defaults to "localhost:5001/taskflow/monitor:dev". Build replaces it with a digest reference.
	Monitor string `json:"monitor"`

	// Build makes the program cross-compile the services with app/cmd/imagebuild (no Docker
	// daemon), reference each image index by digest, and push the images during `pulumi up`.
	// A preview pushes nothing, and a render run builds without pushing. Default: true.
	Build bool `json:"build"`
	// Registry is the host[:port] the built images are pushed to and that the cluster pulls from.
	// Default: "localhost:5001", the kind local registry.
	Registry string `json:"registry"`
	// Namespace is the repository path between the registry and the service name.
	// Default: "taskflow".
	Namespace string `json:"namespace"`
	// Source is the org.opencontainers.image.source label, a repository URL. Empty omits it.
	Source string `json:"source"`
	// ModuleDir is the root of the Go module with app/cmd, relative to the Pulumi project
	// directory. Default: "..".
	ModuleDir string `json:"moduleDir"`
}

// Images holds the reference each Deployment runs. A reference is an
// output so that an image build can supply a digest reference
// (registry/name@sha256:...) known only after the push.
type Images struct {
	API     pulumi.StringOutput
	Worker  pulumi.StringOutput
	Monitor pulumi.StringOutput
}

func defaultImages() ImagesConfig {
	return ImagesConfig{
		API:       "localhost:5001/taskflow/api:dev",
		Worker:    "localhost:5001/taskflow/worker:dev",
		Monitor:   "localhost:5001/taskflow/monitor:dev",
		Build:     true,
		Registry:  "localhost:5001",
		Namespace: "taskflow",
		ModuleDir: "..",
	}
}

// resolveImages returns the image reference of each service. It is the one
// place that decides which image a Deployment runs.
func resolveImages(cfg ImagesConfig) Images {
	return Images{
		API:     pulumi.String(cfg.API).ToStringOutput(),
		Worker:  pulumi.String(cfg.Worker).ToStringOutput(),
		Monitor: pulumi.String(cfg.Monitor).ToStringOutput(),
	}
}

// buildImages builds the service images when cfg.Images.Build is on and returns cfg.Images with
// API, Worker and Monitor replaced by <registry>/<namespace>/<service>@sha256:... references.
// The digests change only with the app source, the revision label, the Go toolchain or the
// build machine's CA bundle, so a preview shows an image change when app code changed. It pushes only during an update that applies to a cluster, never during a preview or
// a render run. Registry credentials come from the user's Docker config. SOURCE_DATE_EPOCH, when
// set, fixes the image creation time. It runs `go run ./app/cmd/imagebuild` in ModuleDir, so the
// Go toolchain must be on PATH, as it is for any Go Pulumi program.
func buildImages(ctx *pulumi.Context, cfg Config) (ImagesConfig, error) {
	images := cfg.Images
	if !images.Build {
		return images, nil
	}

	args := []string{"run", "./app/cmd/imagebuild", "-json",
		"-registry", images.Registry,
		"-namespace", images.Namespace,
		"-source", images.Source,
	}
	push := !ctx.DryRun() && !cfg.renderMode()
	if push {
		args = append(args, "-push")
	}
	cmd := exec.CommandContext(ctx.Context(), "go", args...)
	cmd.Dir = images.ModuleDir
	cmd.Env = os.Environ()
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return ImagesConfig{}, fmt.Errorf("build images in %s: %w: %s", images.ModuleDir, err, strings.TrimSpace(stderr.String()))
	}

	var results []struct {
		Service string `json:"service"`
		Ref     string `json:"ref"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &results); err != nil {
		return ImagesConfig{}, fmt.Errorf("read imagebuild output: %w", err)
	}
	refs := make(map[string]string, len(results))
	for _, r := range results {
		refs[r.Service] = r.Ref
	}
	for service, target := range map[string]*string{"api": &images.API, "worker": &images.Worker, "monitor": &images.Monitor} {
		ref, ok := refs[service]
		if !ok {
			return ImagesConfig{}, fmt.Errorf("read imagebuild output: missing image for %s", service)
		}
		*target = ref
	}

	verb := "built"
	if push {
		verb = "built and pushed"
	}
	if err := ctx.Log.Info(fmt.Sprintf("%s images: %s, %s, %s", verb, images.API, images.Worker, images.Monitor), nil); err != nil {
		return ImagesConfig{}, fmt.Errorf("log image references: %w", err)
	}
	return images, nil
}
