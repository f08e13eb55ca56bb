// Package demo runs the whole pipeline on one machine: it starts RabbitMQ and PostgreSQL with
// scripts/services, builds and starts one api and two workers as separate processes on loopback,
// submits an embedded batch of tasks through the HTTP API, prints the results and the URLs, and
// stops everything it started when its context ends.
package demo

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/taskflow-dev/taskflow/app/internal/logging"
)

// Config says where the demo keeps its state and how it behaves.
type Config struct {
	// Root is the module root, where scripts/services lives.
	Root string
	// StateDir holds the built binaries and the logs. Default Root/.run/demo.
	StateDir string
	// ServicesDir holds the servers' data. PostgreSQL runs as the postgres user, which must be
	// able to reach it, so the default is a directory under the system temporary directory named
	// after Root, which survives between runs.
	ServicesDir string
	// APIAddr is the api's listen address. Default 127.0.0.1:5000, or a free port if that is
	// taken; a port of 0 also picks a free one.
	APIAddr string
	// Once makes Run return after printing the results instead of waiting for ctx to end.
	Once bool
	// Out receives the report.
	Out io.Writer
}

//go:embed batch.json
var batchJSON []byte

// withDefaults fills in the state directories.
func (cfg Config) withDefaults() Config {
	if cfg.StateDir == "" {
		cfg.StateDir = filepath.Join(cfg.Root, ".run", "demo")
	}
	if cfg.ServicesDir == "" {
		sum := sha256.Sum256([]byte(cfg.Root))
		cfg.ServicesDir = filepath.Join(os.TempDir(), fmt.Sprintf("taskflow-demo-%x", sum[:4]))
	}
	return cfg
}

// Clean stops the demo's servers if they still run and deletes their data and the demo's state
// directory.
func Clean(cfg Config) error {
	cfg = cfg.withDefaults()
	script := filepath.Join(cfg.Root, "scripts", "services")
	if _, err := os.Stat(cfg.ServicesDir); err == nil {
		if out, err := exec.Command(script, "stop", cfg.ServicesDir, "--kill").CombinedOutput(); err != nil {
			return fmt.Errorf("stop the demo's servers: %w\n%s", err, out)
		}
	}
	for _, dir := range []string{cfg.ServicesDir, cfg.StateDir} {
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
		fmt.Fprintf(cfg.Out, "removed %s\n", dir)
	}
	return nil
}

// Run executes the demo. It returns nil after a clean stop; any failure to start a part or any
// task that ends in an unexpected state is an error.
func Run(ctx context.Context, cfg Config) error {
	cfg = cfg.withDefaults()
	d := &demo{cfg: cfg, out: cfg.Out}
	defer d.stopAll()

	// Servers.
	services := filepath.Join(cfg.Root, "scripts", "services")
	d.step("installing RabbitMQ and PostgreSQL if missing")
	if err := d.command(ctx, services, "install"); err != nil {
		return err
	}
	d.step("starting RabbitMQ and PostgreSQL in " + cfg.ServicesDir)
	env, err := d.startServices(ctx, services)
	if err != nil {
		return err
	}

	// Binaries.
	bin := filepath.Join(cfg.StateDir, "bin")
	d.step("building the api, the worker and the monitor")
	for _, name := range []string{"api", "worker", "monitor"} {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(bin, name), "./app/cmd/"+name)
		cmd.Dir = cfg.Root
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %w\n%s", name, err, out)
		}
	}

	// Processes: one api, two workers.
	apiAddr := cfg.APIAddr
	switch {
	case apiAddr == "":
		apiAddr = freeAddr("127.0.0.1:5000")
	case strings.HasSuffix(apiAddr, ":0"):
		apiAddr = freeAddr("")
	}
	base := []string{"DATABASE_URL=" + env["DATABASE_URL"], "RABBITMQ_URL=" + env["RABBITMQ_URL"]}
	if err := d.startProcess("api", filepath.Join(bin, "api"), append(base, "HTTP_ADDR="+apiAddr)); err != nil {
		return err
	}
	for i := 1; i <= 2; i++ {
		name := fmt.Sprintf("worker-%d", i)
		extra := []string{"HTTP_ADDR=" + freeAddr(""), "WORKER_NAME=" + name, "WORKER_CONCURRENCY=4"}
		if err := d.startProcess(name, filepath.Join(bin, "worker"), append(base, extra...)); err != nil {
			return err
		}
	}
	monitorAddr := freeAddr("127.0.0.1:5555")
	adminToken := randomToken()
	monitorEnv := append(base, "HTTP_ADDR="+monitorAddr, "RABBITMQ_MANAGEMENT_URL="+env["RABBITMQ_MANAGEMENT_URL"],
		"MONITOR_ADMIN_TOKEN="+adminToken, "MONITOR_READ_TOKEN="+randomToken())
	if err := d.startProcess("monitor", filepath.Join(bin, "monitor"), monitorEnv); err != nil {
		return err
	}
	apiURL := "http://" + apiAddr
	if err := waitReady(ctx, apiURL+"/api/readyz", 60*time.Second); err != nil {
		return fmt.Errorf("wait for the api: %w (see %s)", err, d.logPath("api"))
	}
	monitorURL := "http://" + monitorAddr + "/flower/"
	if err := waitReady(ctx, "http://"+monitorAddr+"/flower/healthz", 60*time.Second); err != nil {
		return fmt.Errorf("wait for the monitor: %w (see %s)", err, d.logPath("monitor"))
	}

	// The batch.
	d.step("submitting the batch to " + apiURL + "/api/tasks")
	results, err := submitBatch(ctx, apiURL)
	if err != nil {
		return err
	}
	d.monitorURL, d.adminToken = monitorURL, adminToken
	d.report(results, apiURL, env)
	if bad := unexpected(results); bad != nil {
		return bad
	}
	if cfg.Once {
		return nil
	}
	fmt.Fprintln(d.out, "\nThe api and workers keep running. Press Ctrl-C to stop everything.")
	<-ctx.Done()
	return nil
}

// FindRoot returns the nearest directory at or above the working directory that contains
// scripts/services, that is the repository root.
func FindRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "scripts", "services")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("scripts/services not found above the working directory")
		}
		dir = parent
	}
}

// demo tracks what Run started so it can stop it.
type demo struct {
	cfg         Config
	out         io.Writer
	procs       []*exec.Cmd
	servicesDir string
	monitorURL  string
	adminToken  string
}

func (d *demo) step(msg string) {
	fmt.Fprintf(d.out, "==> %s\n", msg)
}

func (d *demo) logPath(name string) string {
	return filepath.Join(d.cfg.StateDir, "logs", name+".log")
}

func (d *demo) command(ctx context.Context, name string, args ...string) error {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w\n%s", filepath.Base(name), strings.Join(args, " "), err, stderr.String())
	}
	return nil
}

// startServices starts both servers and returns the variables scripts/services prints.
func (d *demo) startServices(ctx context.Context, script string) (map[string]string, error) {
	dir := d.cfg.ServicesDir
	d.servicesDir = dir
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, script, "start", dir)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("start services: %w\n%s", err, stderr.String())
	}
	env := map[string]string{}
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			env[k] = strings.Trim(v, `"`)
		}
	}
	return env, nil
}

// startProcess starts a binary with its output in StateDir/logs/<name>.log.
func (d *demo) startProcess(name, path string, env []string) error {
	if err := os.MkdirAll(filepath.Dir(d.logPath(name)), 0o755); err != nil {
		return err
	}
	logFile, err := os.Create(d.logPath(name))
	if err != nil {
		return err
	}
	cmd := exec.Command(path)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // Ctrl-C reaches the demo only, which stops children in order
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return fmt.Errorf("start %s: %w", name, err)
	}
	_ = logFile.Close() // the child keeps its own descriptor
	d.procs = append(d.procs, cmd)
	d.step(fmt.Sprintf("started %s (pid %d), log %s", name, cmd.Process.Pid, d.logPath(name)))
	return nil
}

// stopAll sends SIGTERM to the processes in reverse start order, waits for them, then stops the
// servers.
func (d *demo) stopAll() {
	for i := len(d.procs) - 1; i >= 0; i-- {
		_ = d.procs[i].Process.Signal(syscall.SIGTERM)
	}
	for _, p := range d.procs {
		done := make(chan struct{})
		go func() { _ = p.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(40 * time.Second):
			_ = p.Process.Kill()
			<-done
		}
	}
	if d.servicesDir != "" {
		d.step("stopping RabbitMQ and PostgreSQL")
		script := filepath.Join(d.cfg.Root, "scripts", "services")
		if err := d.command(context.Background(), script, "stop", d.servicesDir); err != nil {
			fmt.Fprintf(d.out, "stop services: %v\n", err)
		}
	}
}

// randomToken returns 32 random hex characters for a monitor token.
func randomToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// freeAddr returns preferred if it can be listened on, otherwise a free loopback address.
func freeAddr(preferred string) string {
	if preferred != "" {
		if ln, err := net.Listen("tcp", preferred); err == nil {
			_ = ln.Close()
			return preferred
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "127.0.0.1:0"
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitReady(ctx context.Context, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	client := http.Client{Timeout: 2 * time.Second}
	for {
		resp, err := client.Get(url)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = errors.New(resp.Status)
			}
			return fmt.Errorf("%s not ready after %s: %w", url, timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// report prints the results and where to look next.
func (d *demo) report(results []result, apiURL string, env map[string]string) {
	fmt.Fprintln(d.out)
	tw := tabwriter.NewWriter(d.out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TASK\tSTATE\tATTEMPTS\tRESULT OR ERROR")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Label, r.State, r.attempts(), r.Summary())
	}
	_ = tw.Flush()

	fmt.Fprintln(d.out, "\nURLs:")
	fmt.Fprintf(d.out, "  tasks       %s/api/tasks\n", apiURL)
	fmt.Fprintf(d.out, "  workflows   %s/api/workflows\n", apiURL)
	fmt.Fprintf(d.out, "  readiness   %s/api/readyz\n", apiURL)
	fmt.Fprintf(d.out, "  metrics     %s/metrics\n", apiURL)
	fmt.Fprintf(d.out, "  monitor     %s (sign in with any user name and the admin token %s)\n", d.monitorURL, d.adminToken)
	fmt.Fprintf(d.out, "  rabbitmq    %s (management UI; user and password are in the URL)\n", env["RABBITMQ_MANAGEMENT_URL"])
	fmt.Fprintf(d.out, "  postgres    %s\n", logging.Redact(env["DATABASE_URL"]))
	fmt.Fprintf(d.out, "  logs        %s\n", filepath.Join(d.cfg.StateDir, "logs"))
	fmt.Fprintf(d.out, "\nTry: curl -s -H 'Content-Type: application/json' -d '{\"task\":\"fib\",\"args\":{\"n\":90}}' %s/api/tasks\n", apiURL)
}

// batchItem is one task or workflow of the embedded batch.
type batchItem struct {
	Label string          `json:"label"`
	Body  json.RawMessage `json:"body"`
	// Path is the collection to post Body to: /api/tasks when empty, or /api/workflows.
	Path string `json:"path"`
	// Expect is the state the task must end in: SUCCESS, or FAILURE for the malformed input
	// that shows a permanent error.
	Expect string `json:"expect"`
}
