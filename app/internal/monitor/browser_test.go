package monitor_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/taskflow-dev/taskflow/app/internal/task"
	"github.com/taskflow-dev/taskflow/app/internal/testenv"
)

// chromiumPath is where Debian's chromium package installs the browser.
const chromiumPath = "/usr/bin/chromium"

// TestBrowserRetryFailedTask drives the dashboard in headless Chromium through a reverse proxy
// that forwards /flower/... unchanged: the live worker count changes when a worker starts, and a
// failed task succeeds after the retry button is pressed.
func TestBrowserRetryFailedTask(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("the browser test needs Debian's chromium at %s (apt-get install chromium; scripts/test installs it): %v",
			chromiumPath, err)
	}
	e := startEnv(t, 0)
	e.failing.Store(true)
	proxy := startProxy(t, e.URL)
	artifacts := artifactDir(t)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	browser, stop := newBrowser(ctx, t)
	defer stop()
	requests := watchRequests(t, browser)
	acceptDialogs(t, browser)
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte("operator:"+adminToken))
	if _, err := chromedp.Call(browser, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(browser, network.SetExtraHTTPHeaders,
		network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Authorization": auth}}); err != nil {
		t.Fatal(err)
	}

	// The overview loads through the proxy and shows no worker.
	overview := proxy + prefix + "/"
	run(t, browser, "open the overview", 30*time.Second,
		chromedp.Navigate(overview),
		chromedp.WaitVisible(chromedp.ID("worker-count")),
		pollJS(`document.getElementById("live").dataset.state === "open"`),
		pollJS(`document.getElementById("worker-count").textContent.trim() === "0"`),
	)
	screenshot(t, browser, filepath.Join(artifacts, "monitor-1-no-workers.png"))

	// A worker starts, and the count changes without a reload.
	if err := e.stack.StartWorkers(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	run(t, browser, "see the live worker count change", 30*time.Second,
		pollJS(`document.getElementById("worker-count").textContent.trim() === "1"`),
		pollJS(`location.href === `+jsString(overview)),
	)
	screenshot(t, browser, filepath.Join(artifacts, "monitor-2-worker-online.png"))

	// A task fails; it is opened from the task list.
	id := e.submit(t, `{"task":"switch","args":{"label":"browser"}}`)
	e.waitState(t, id, 30*time.Second, task.Failure)
	run(t, browser, "open the failed task", 30*time.Second,
		chromedp.Navigate(proxy+prefix+"/tasks?state=FAILURE"),
		clickJS(`a[href="`+prefix+`/tasks/`+id+`"]`),
		chromedp.WaitVisible(chromedp.ID("task-detail")),
		pollJS(`document.getElementById("task-state").textContent.trim() === "FAILURE"`),
		chromedp.WaitVisible(chromedp.ID("retry")),
	)
	screenshot(t, browser, filepath.Join(artifacts, "monitor-3-failed-task.png"))

	// Retry, accept the confirmation, and see the task succeed on the same page.
	e.failing.Store(false)
	run(t, browser, "retry the task and see it succeed", 60*time.Second,
		clickJS("#retry"),
		pollJS(`document.getElementById("task-state").textContent.trim() === "SUCCESS"`),
	)
	screenshot(t, browser, filepath.Join(artifacts, "monitor-4-task-succeeded.png"))

	if v := e.waitState(t, id, 5*time.Second, task.Success); len(v.Attempts) != 2 {
		t.Errorf("attempts = %d, want 2 (the failure and the retry)", len(v.Attempts))
	}
	if outside := requests.outside(proxy + prefix + "/"); len(outside) > 0 {
		t.Errorf("the browser requested URLs outside the prefix: %v", outside)
	}
	if got := requests.count(); got < 5 {
		t.Errorf("recorded %d browser requests, want at least 5: the request log is not working", got)
	}
}

// startProxy starts a reverse proxy on loopback that forwards paths under the prefix unchanged to
// target's host and returns 404 for any other path.
func startProxy(t *testing.T, target string) string {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = ""
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.SetXForwarded()
		},
		FlushInterval: -1, // pass the event stream through at once
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != prefix && !strings.HasPrefix(r.URL.Path, prefix+"/") {
			http.NotFound(w, r)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// artifactDir returns .run/artifacts under the repository root, creating it.
func artifactDir(t *testing.T) string {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, ".run", "artifacts")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// newBrowser starts headless Chromium with a fresh profile and no background traffic.
func newBrowser(ctx context.Context, t *testing.T) (context.Context, func()) {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	browser, cancelBrowser := chromedp.NewContext(allocCtx, chromedp.WithLogf(t.Logf))
	// The browser lives as long as the context of the first call, so that call gets no timeout
	// of its own. The parent ctx still bounds it.
	if err := chromedp.Do(browser); err != nil {
		cancelBrowser()
		cancelAlloc()
		t.Fatalf("start chromium: %v", err)
	}
	return browser, func() {
		cancelBrowser()
		cancelAlloc()
	}
}

// run runs the actions within timeout and fails the test with the step's name.
func run(t *testing.T, browser context.Context, step string, timeout time.Duration, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(browser, timeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", step, err)
	}
}

// pollJS waits until the expression is true. The timeout of run bounds the wait.
func pollJS(expression string) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](expression, chromedp.WithPollingInterval(100*time.Millisecond),
		chromedp.WithPollingTimeout(time.Hour))
}

// clickJS waits for an element that matches the CSS selector and clicks it inside the page. A
// protocol-level click can miss, because the live pages replace their sections, and with them
// the node that a query found, every few hundred milliseconds in these tests.
func clickJS(selector string) chromedp.Action[chromedp.Void] {
	return pollJS(`(() => { const el = document.querySelector(` + jsString(selector) + `); if (el) el.click(); return !!el; })()`)
}

func jsString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// screenshot saves a PNG of the whole page and logs its path.
func screenshot(t *testing.T, browser context.Context, path string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(browser, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100 gives a PNG
	if err != nil {
		t.Fatalf("take screenshot %s: %v", path, err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// requestLog records the URLs the page requested.
type requestLog struct {
	mu   sync.Mutex
	urls []string
}

func watchRequests(t *testing.T, browser context.Context) *requestLog {
	t.Helper()
	l := &requestLog{}
	err := chromedp.Listen(browser, func(ev any) {
		if req, ok := ev.(*network.EventRequestWillBeSent); ok && req.Request != nil {
			l.mu.Lock()
			l.urls = append(l.urls, req.Request.URL)
			l.mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func (l *requestLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.urls)
}

// acceptDialogs accepts every JavaScript dialog, such as the confirmation of an action. The
// listener must not send commands itself, so a goroutine sends the reply.
func acceptDialogs(t *testing.T, browser context.Context) {
	t.Helper()
	err := chromedp.Listen(browser, func(ev any) {
		if _, ok := ev.(*page.EventJavascriptDialogOpening); ok {
			go func() {
				_, _ = chromedp.Call(browser, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
			}()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}

// outside returns the requested URLs that do not start with base, ignoring data: URLs.
func (l *requestLog) outside(base string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, u := range l.urls {
		if !strings.HasPrefix(u, base) && !strings.HasPrefix(u, "data:") {
			out = append(out, u)
		}
	}
	return out
}
