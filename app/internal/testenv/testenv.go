// Package testenv gives integration tests real RabbitMQ and PostgreSQL servers, each test isolated
// in its own vhost and database.
//
// `make test` starts one pair of servers with scripts/services and passes them in
// TEST_DATABASE_URL, TEST_RABBITMQ_URL and TEST_RABBITMQ_MANAGEMENT_URL. When those are unset,
// Main starts a private pair for the test binary and stops it afterwards, so `go test` works on its
// own too. A missing server is a test failure, never a skip.
package testenv

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Environment variables that name shared test servers.
const (
	envDatabase   = "TEST_DATABASE_URL"
	envRabbitMQ   = "TEST_RABBITMQ_URL"
	envManagement = "TEST_RABBITMQ_MANAGEMENT_URL"
)

var shared struct {
	database, rabbitmq, management string
	startErr                       error
}

// Main runs the tests of a package. Call it from TestMain:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
func Main(m *testing.M) {
	shared.database = os.Getenv(envDatabase)
	shared.rabbitmq = os.Getenv(envRabbitMQ)
	shared.management = os.Getenv(envManagement)
	var private *Services
	if shared.database == "" || shared.rabbitmq == "" || shared.management == "" {
		private, shared.startErr = startServices(false)
		if shared.startErr == nil {
			shared.database = private.DatabaseURL
			shared.rabbitmq = private.RabbitMQURL
			shared.management = private.ManagementURL
		}
	}
	code := m.Run()
	if private != nil {
		if err := private.stop(false); err != nil {
			fmt.Fprintf(os.Stderr, "testenv: stop services: %v\n", err)
		}
		_ = os.RemoveAll(private.Dir)
	}
	cleanupBuilds()
	os.Exit(code)
}

func requireShared(t testing.TB) {
	t.Helper()
	if shared.startErr != nil {
		t.Fatalf("test services did not start: %v", shared.startErr)
	}
	if shared.database == "" {
		t.Fatal("test services are not set up: call testenv.Main from TestMain")
	}
}

// Database creates an empty database for the test, drops it at the end of the test, and returns its
// URL.
func Database(t testing.TB) string {
	t.Helper()
	requireShared(t)
	ctx := context.Background()
	name := "test_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:16]
	admin, err := pgx.Connect(ctx, shared.database)
	if err != nil {
		t.Fatalf("connect to test database server: %v", err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, shared.database)
		if err != nil {
			t.Logf("drop database %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(shared.database)
	if err != nil {
		t.Fatalf("parse %s: %v", envDatabase, err)
	}
	u.Path = "/" + name
	return u.String()
}

// RabbitMQ creates a vhost for the test, deletes it at the end of the test, and returns an AMQP URL
// for it.
func RabbitMQ(t testing.TB) string {
	t.Helper()
	requireShared(t)
	vhost := "test-" + uuid.NewString()[:13]
	return newVhost(t, shared.rabbitmq, shared.management, vhost)
}

func newVhost(t testing.TB, amqpURL, managementURL, vhost string) string {
	t.Helper()
	escaped := url.PathEscape(vhost)
	if err := manage(managementURL, http.MethodPut, "/api/vhosts/"+escaped, ""); err != nil {
		t.Fatalf("create vhost %s: %v", vhost, err)
	}
	t.Cleanup(func() {
		if err := manage(managementURL, http.MethodDelete, "/api/vhosts/"+escaped, ""); err != nil {
			t.Logf("delete vhost %s: %v", vhost, err)
		}
	})
	user := userOf(amqpURL)
	perms := `{"configure":".*","write":".*","read":".*"}`
	if err := manage(managementURL, http.MethodPut, "/api/permissions/"+escaped+"/"+url.PathEscape(user), perms); err != nil {
		t.Fatalf("grant %s on vhost %s: %v", user, vhost, err)
	}
	u, _ := url.Parse(amqpURL)
	u.Path = "/" + vhost
	u.RawPath = "/" + escaped
	return u.String()
}

func userOf(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.User == nil {
		return ""
	}
	return u.User.Username()
}

// manage sends one request to the RabbitMQ management API at base, whose URL carries the
// credentials.
func manage(base, method, path, body string) error {
	u, err := url.Parse(base)
	if err != nil {
		return fmt.Errorf("parse management URL: %w", err)
	}
	password, _ := u.User.Password()
	user := u.User.Username()
	u.User = nil
	u.Path = strings.TrimSuffix(u.Path, "/")
	req, err := http.NewRequest(method, u.String()+path, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.SetBasicAuth(user, password)
	req.Header.Set("Content-Type", "application/json")
	client := http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}

// Services is a private RabbitMQ and PostgreSQL pair run by scripts/services in Dir.
type Services struct {
	Dir           string
	DatabaseURL   string
	RabbitMQURL   string
	ManagementURL string
}

// StartRabbitMQ starts a RabbitMQ server for this test alone, for tests that stop or kill the
// broker. It is killed at the end of the test.
func StartRabbitMQ(t testing.TB) *Services {
	t.Helper()
	dir := tempDir(t)
	s := &Services{Dir: dir}
	// Registered first, so that a server left half-started by a failed start is stopped too.
	t.Cleanup(func() { _ = s.run("stop", dir, "--kill", "rabbitmq") })
	if err := s.run("start", dir, "rabbitmq"); err != nil {
		t.Fatalf("start private rabbitmq: %v", err)
	}
	return s
}

// StartPostgres starts a PostgreSQL server for this test alone, for tests that kill and restart
// the database. It is stopped at the end of the test. It keeps PostgreSQL's durable settings,
// because with synchronous_commit off a killed server loses commits it has already confirmed.
func StartPostgres(t testing.TB) *Services {
	t.Helper()
	dir := tempDir(t)
	s := &Services{Dir: dir}
	t.Cleanup(func() { _ = s.run("stop", dir, "--kill", "postgres") })
	if err := s.run("start", dir, "postgres"); err != nil {
		t.Fatalf("start private postgres: %v", err)
	}
	return s
}

// Stop stops the named service ("rabbitmq" or "postgres") gracefully; Kill sends SIGKILL.
func (s *Services) Stop(service string) error { return s.run("stop", s.Dir, service) }

// Kill stops the named service with SIGKILL.
func (s *Services) Kill(service string) error { return s.run("stop", s.Dir, "--kill", service) }

// Start starts the named service again, with the same port, credentials and data.
func (s *Services) Start(service string) error { return s.run("start", s.Dir, service) }

func startServices(durable bool) (*Services, error) {
	dir, err := os.MkdirTemp("", "taskflow-test-")
	if err != nil {
		return nil, err
	}
	s := &Services{Dir: dir}
	args := []string{"start", dir}
	if !durable {
		args = append(args, "--fast")
	}
	if err := s.run(args...); err != nil {
		_ = s.stop(true)
		return nil, err
	}
	return s, nil
}

func (s *Services) stop(kill bool) error {
	if kill {
		return s.run("stop", s.Dir, "--kill")
	}
	return s.run("stop", s.Dir)
}

// run calls scripts/services and, for start and env, reads the URLs it prints.
func (s *Services) run(args ...string) error {
	script, err := repoFile("scripts/services")
	if err != nil {
		return err
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(script, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("scripts/services %s: %w\n%s", strings.Join(args, " "), err, stderr.String())
	}
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		switch name {
		case "DATABASE_URL":
			s.DatabaseURL = value
		case "RABBITMQ_URL":
			s.RabbitMQURL = value
		case "RABBITMQ_MANAGEMENT_URL":
			s.ManagementURL = value
		}
	}
	return nil
}

// tempDir returns a directory that the postgres user can reach, removed after the test.
func tempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "taskflow-test-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

var rootOnce = sync.OnceValues(func() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
})

// RepoRoot returns the directory of the module's go.mod.
func RepoRoot() (string, error) { return rootOnce() }

func repoFile(rel string) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, rel), nil
}
