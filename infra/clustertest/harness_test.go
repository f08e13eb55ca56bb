//go:build cluster

package clustertest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// Environment variables the cluster test reads.
const (
	// clusterDirEnv names the directory of a cluster that `scripts/cluster
	// up` started. The test reads its cluster.env.
	clusterDirEnv = "TASKFLOW_CLUSTER_DIR"
	// artifactsEnv names the directory for the live objects and the Pulumi
	// logs. Default: .run/cluster in the repository.
	artifactsEnv = "TASKFLOW_CLUSTER_ARTIFACTS"
)

// commandTimeout bounds one Pulumi or kubectl command. The first preview
// on a cold Go build cache compiles the program, the Kubernetes SDK and
// the service images, which took several minutes on a 2-core machine.
const commandTimeout = 20 * time.Minute

// stack is the name of the Pulumi stack the test creates, so that the
// repository's Pulumi.dev.yaml is the config it starts from.
const stack = "dev"

// harness runs the Pulumi CLI and kubectl against the cluster in
// TASKFLOW_CLUSTER_DIR, from a temporary copy of the Pulumi project.
type harness struct {
	t *testing.T
	// repo is the repository root.
	repo string
	// bin contains pulumi, kubectl and the other tools of the cluster.
	bin        string
	kubeconfig string
	// registry is the host:port of the cluster's loopback OCI registry.
	registry string
	// project is the temporary Pulumi project directory with copies of
	// Pulumi.yaml and Pulumi.dev.yaml.
	project string
	// objects and logs are the output directories for the live objects
	// and the Pulumi command output.
	objects string
	logs    string
	// env is the environment of every command.
	env []string
	// seed is the stack's secret seed, which must never appear in plain text.
	seed string
}

// newHarness reads the cluster from TASKFLOW_CLUSTER_DIR and prepares the
// Pulumi project, backend and output directories. It stops the test when
// any of them is missing.
func newHarness(t *testing.T) *harness {
	t.Helper()
	dir := os.Getenv(clusterDirEnv)
	if dir == "" {
		t.Fatalf("%s is not set: run `make test-cluster`, or `scripts/cluster up DIR` and set %s=DIR", clusterDirEnv, clusterDirEnv)
	}
	cluster, err := readClusterEnv(filepath.Join(dir, "cluster.env"))
	if err != nil {
		t.Fatalf("read cluster: %v; start one with `scripts/cluster up %s`", err, dir)
	}
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatalf("find repository root: %v", err)
	}

	h := &harness{
		t:          t,
		repo:       repo,
		bin:        cluster["bin"],
		kubeconfig: cluster["kubeconfig"],
		registry:   cluster["registry"],
	}
	for key, value := range map[string]string{"bin": h.bin, "kubeconfig": h.kubeconfig, "registry": h.registry} {
		if value == "" {
			t.Fatalf("%s/cluster.env has no %s", dir, key)
		}
	}

	// Outputs survive the test, so a failure can be inspected.
	artifacts := os.Getenv(artifactsEnv)
	if artifacts == "" {
		artifacts = filepath.Join(repo, ".run", "cluster")
	}
	h.objects = filepath.Join(artifacts, "objects")
	h.logs = filepath.Join(artifacts, "logs")
	for _, d := range []string{h.objects, h.logs} {
		if err := os.RemoveAll(d); err != nil {
			t.Fatalf("clear output directory: %v", err)
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatalf("create output directory: %v", err)
		}
	}

	// Pulumi writes the stack's settings next to Pulumi.yaml, so the
	// project is a copy whose main points back at the program.
	work := t.TempDir()
	h.project = filepath.Join(work, "project")
	for _, d := range []string{h.project, filepath.Join(work, "state"), filepath.Join(work, "home"), filepath.Join(work, "tmp")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatalf("create pulumi directory: %v", err)
		}
	}
	if err := copyProject(repo, h.project); err != nil {
		t.Fatalf("copy pulumi project: %v", err)
	}

	h.env = commandEnv(os.Environ(), map[string]string{
		"PATH":               h.bin + string(os.PathListSeparator) + os.Getenv("PATH"),
		"KUBECONFIG":         h.kubeconfig,
		"PULUMI_HOME":        filepath.Join(work, "home"),
		"PULUMI_BACKEND_URL": "file://" + filepath.Join(work, "state"),
		// Only this test run needs to decrypt the stack's secrets.
		"PULUMI_CONFIG_PASSPHRASE": randomHex(t, 24),
		"PULUMI_SKIP_UPDATE_CHECK": "true",
		// The Go language host from sdk v3.62.0 reports a plugin named
		// cloud-sdk that does not exist, and the engine would try to
		// download it.
		"PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
		// The language host compiles the program into TMPDIR and leaves
		// the binary there when a run fails.
		"TMPDIR": filepath.Join(work, "tmp"),
		"GOWORK": "off",
	})
	h.seed = randomHex(t, 32)
	return h
}

// readClusterEnv reads the key=value lines that `scripts/cluster up` writes.
func readClusterEnv(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	values := map[string]string{}
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		key, value, ok := strings.Cut(scanner.Text(), "=")
		if ok {
			values[key] = value
		}
	}
	if err := scanner.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return values, nil
}

// copyProject writes Pulumi.yaml, with main pointing at the repository's
// program, and the dev stack's settings into dir.
func copyProject(repo, dir string) error {
	project, err := os.ReadFile(filepath.Join(repo, "Pulumi.yaml"))
	if err != nil {
		return err
	}
	mainLine := regexp.MustCompile(`(?m)^main:.*$`)
	if !mainLine.Match(project) {
		return errors.New("Pulumi.yaml has no main line")
	}
	program, err := filepath.Rel(dir, filepath.Join(repo, "infra"))
	if err != nil {
		return err
	}
	project = mainLine.ReplaceAll(project, []byte("main: "+program+"/"))
	if err := os.WriteFile(filepath.Join(dir, "Pulumi.yaml"), project, 0o600); err != nil {
		return err
	}

	settings, err := os.ReadFile(filepath.Join(repo, "Pulumi."+stack+".yaml"))
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "Pulumi."+stack+".yaml"), settings, 0o600)
}

// commandEnv returns base without the variables that would point Pulumi,
// kubectl or Go elsewhere, plus set.
func commandEnv(base []string, set map[string]string) []string {
	var env []string
	for _, kv := range base {
		name, _, _ := strings.Cut(kv, "=")
		if _, replaced := set[name]; replaced || strings.HasPrefix(name, "PULUMI_") {
			continue
		}
		env = append(env, kv)
	}
	for name, value := range set {
		env = append(env, name+"="+value)
	}
	return env
}

// randomHex returns n random bytes in hex.
func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("read random bytes: %v", err)
	}
	return hex.EncodeToString(b)
}

// run runs the tool named name from the bin directory in the project
// directory, with stdin as its input when not nil, and returns its stdout.
// With a logName, it writes the command, stdout and stderr to
// logs/<logName>.log. The error carries the tool's error messages.
func (h *harness) run(ctx context.Context, logName string, stdin []byte, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(h.bin, name), args...)
	cmd.Dir = h.project
	cmd.Env = h.env
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	started := time.Now()
	err := cmd.Run()

	command := name + " " + strings.Join(args, " ")
	if logName != "" {
		h.t.Logf("%s: %s", command, time.Since(started).Round(100*time.Millisecond))
		text := fmt.Sprintf("$ %s\n%s\n--- stderr\n%s", command, stdout.Bytes(), stderr.Bytes())
		if werr := os.WriteFile(filepath.Join(h.logs, logName+".log"), []byte(text), 0o644); werr != nil {
			h.t.Errorf("write log: %v", werr)
		}
	}
	if err != nil {
		return stdout.Bytes(), fmt.Errorf("%s: %w: %s", command, err, errorMessages(stdout.String()+"\n"+stderr.String()))
	}
	return stdout.Bytes(), nil
}

// pulumi runs the Pulumi CLI without prompts or colours and logs it as logName.
func (h *harness) pulumi(ctx context.Context, logName string, args ...string) ([]byte, error) {
	return h.run(ctx, logName, nil, "pulumi", append(args, "--non-interactive", "--color", "never")...)
}

// kubectl runs kubectl on the cluster with stdin as its input when not nil.
func (h *harness) kubectl(ctx context.Context, stdin []byte, args ...string) ([]byte, error) {
	return h.run(ctx, "", stdin, "kubectl", append([]string{"--kubeconfig", h.kubeconfig}, args...)...)
}

// get runs `kubectl get args -o json` and decodes the result into out.
func (h *harness) get(ctx context.Context, out any, args ...string) error {
	stdout, err := h.kubectl(ctx, nil, append(append([]string{"get"}, args...), "-o", "json")...)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(stdout, out); err != nil {
		return fmt.Errorf("decode kubectl get %s: %w", strings.Join(args, " "), err)
	}
	return nil
}

// preview runs `pulumi preview --json` with extra flags and decodes its
// output. The result is valid even when err is not nil, as long as the
// CLI printed its JSON, so that --expect-no-changes failures can name the
// changes.
func (h *harness) preview(ctx context.Context, logName string, flags ...string) (previewResult, error) {
	stdout, runErr := h.pulumi(ctx, logName, append([]string{"preview", "--json"}, flags...)...)
	var p previewResult
	if err := json.Unmarshal(stdout, &p); err != nil {
		return previewResult{}, errors.Join(runErr, fmt.Errorf("decode preview output: %w", err))
	}
	if runErr != nil {
		// The JSON carries the messages that the text output would print.
		var messages []string
		for _, d := range p.Diagnostics {
			if d.Severity == "error" {
				messages = append(messages, strings.TrimSpace(d.Message))
			}
		}
		return p, fmt.Errorf("%w: %s", runErr, strings.Join(messages, "; "))
	}
	return p, nil
}

// stackConfig is the part of the stack settings file the checks read.
type stackConfig struct {
	Config struct {
		Nodes struct {
			Stateful  []string `yaml:"stateful"`
			Stateless []string `yaml:"stateless"`
		} `yaml:"taskflow:nodes"`
		Ingress struct {
			Host string `yaml:"host"`
		} `yaml:"taskflow:ingress"`
	} `yaml:"config"`
}

// readStackConfig reads the stack settings of the temporary project.
func (h *harness) readStackConfig() (stackConfig, error) {
	var cfg stackConfig
	data, err := os.ReadFile(h.stackFile())
	if err != nil {
		return cfg, err
	}
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		return cfg, fmt.Errorf("decode %s: %w", h.stackFile(), err)
	}
	return cfg, nil
}

// stackFile is the path of the temporary project's stack settings.
func (h *harness) stackFile() string {
	return filepath.Join(h.project, "Pulumi."+stack+".yaml")
}

// waitFor calls probe every pollInterval until it reports done or fails, or
// until timeout passes. On timeout the error carries the last status.
func waitFor(ctx context.Context, timeout time.Duration, probe func() (done bool, status string, err error)) error {
	const pollInterval = 500 * time.Millisecond
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ticker := time.NewTicker(pollInterval)
	defer ticker.Stop()
	for {
		done, status, err := probe()
		if err != nil || done {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("timed out after %s: %s", timeout, status)
		case <-ticker.C:
		}
	}
}
