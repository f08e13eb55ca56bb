package image

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// gitRun runs git in dir with a fixed identity and fails the test on error.
func gitRun(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GIT_AUTHOR_NAME=test", "GIT_AUTHOR_EMAIL=test@example.com",
		"GIT_COMMITTER_NAME=test", "GIT_COMMITTER_EMAIL=test@example.com",
		"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
	)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

func TestSourceRevision(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	gitRun(t, dir, "init", "-q")
	if err := os.MkdirAll(filepath.Join(dir, "app"), 0o755); err != nil {
		t.Fatalf("mkdir: %v", err)
	}
	writeFile(t, filepath.Join(dir, "app", "main.go"), "package main\n")
	gitRun(t, dir, "add", ".")
	gitRun(t, dir, "commit", "-q", "-m", "app")
	appCommit := gitRun(t, dir, "rev-parse", "HEAD")

	if _, err := SourceRevision(ctx, dir, "infra"); err == nil {
		t.Error("SourceRevision for a path without commits returned no error")
	}

	// A commit outside the paths must not change the revision.
	writeFile(t, filepath.Join(dir, "README.md"), "docs\n")
	gitRun(t, dir, "add", ".")
	gitRun(t, dir, "commit", "-q", "-m", "docs")
	got, err := SourceRevision(ctx, dir, "app")
	if err != nil {
		t.Fatalf("SourceRevision: %v", err)
	}
	if got != appCommit {
		t.Errorf("revision after a docs commit = %s, want the app commit %s", got, appCommit)
	}

	// An untracked file inside the paths marks the revision dirty.
	writeFile(t, filepath.Join(dir, "app", "new.go"), "package main\n")
	got, err = SourceRevision(ctx, dir, "app")
	if err != nil {
		t.Fatalf("SourceRevision with an untracked file: %v", err)
	}
	if want := appCommit + "-dirty"; got != want {
		t.Errorf("revision with an untracked file = %s, want %s", got, want)
	}

	if _, err := SourceRevision(ctx, t.TempDir(), "app"); err == nil {
		t.Error("SourceRevision outside a work tree returned no error")
	}
}
