package image

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// SourceRevision returns the hash of the last commit in the git work tree at dir that changed
// any of paths, with "-dirty" appended when those paths have uncommitted or untracked changes.
//
// Scoping the revision to the paths the binaries are built from (for example "app", "go.mod"
// and "go.sum") keeps the org.opencontainers.image.revision label, and so the image digest,
// unchanged by commits that touch only infrastructure or documentation. It runs git, and returns
// an error when git is missing, dir is not in a work tree, or no commit touches paths.
func SourceRevision(ctx context.Context, dir string, paths ...string) (string, error) {
	if len(paths) == 0 {
		paths = []string{"."}
	}

	head, err := git(ctx, dir, append([]string{"log", "-1", "--format=%H", "--"}, paths...)...)
	if err != nil {
		return "", err
	}
	if head == "" {
		return "", fmt.Errorf("source revision in %s: no commit changes %s", dir, strings.Join(paths, ", "))
	}

	status, err := git(ctx, dir, append([]string{"status", "--porcelain", "--untracked-files=normal", "--"}, paths...)...)
	if err != nil {
		return "", err
	}
	if status != "" {
		head += "-dirty"
	}
	return head, nil
}

func git(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("git %s in %s: %w: %s", strings.Join(args, " "), dir, err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String()), nil
}
