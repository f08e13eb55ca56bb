package image

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// goBuild cross-compiles the main package pkg for platform and returns the binary.
//
// go build records its settings in the binary's build information, so the environment pins the
// ones a caller's shell commonly varies: CGO off, baseline GOAMD64 and GOARM64, and GOFLAGS
// cleared so flags such as -race or -buildvcs=true cannot leak in. Other variables are
// inherited, and a GOEXPERIMENT or GOTOOLCHAIN setting still changes the binary.
func goBuild(ctx context.Context, goCommand, dir, pkg string, platform v1.Platform) ([]byte, error) {
	tmp, err := os.MkdirTemp("", "taskflow-image-*")
	if err != nil {
		return nil, fmt.Errorf("create build directory: %w", err)
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "app")

	cmd := exec.CommandContext(ctx, goCommand, "build",
		"-trimpath",
		"-buildvcs=false",
		"-ldflags=-s -w -buildid=",
		"-o", out,
		pkg,
	)
	cmd.Dir = dir
	// exec.Cmd keeps the last value of a repeated variable, so these override the inherited ones.
	cmd.Env = append(os.Environ(),
		"CGO_ENABLED=0",
		"GOOS="+platform.OS,
		"GOARCH="+platform.Architecture,
		"GOAMD64=v1",
		"GOARM64=v8.0",
		"GOFLAGS=",
	)
	var stderr bytes.Buffer
	cmd.Stdout = &stderr
	cmd.Stderr = &stderr

	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go build %s for %s in %s: %w: %s",
			pkg, platform.String(), dir, err, strings.TrimSpace(stderr.String()))
	}
	binary, err := os.ReadFile(out)
	if err != nil {
		return nil, fmt.Errorf("read binary of %s: %w", pkg, err)
	}
	return binary, nil
}
