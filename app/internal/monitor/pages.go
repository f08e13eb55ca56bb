package monitor

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/taskflow-dev/taskflow/app/internal/task"
)

//go:embed web/templates/*.html web/static/*
var webFS embed.FS

// pages renders the HTML pages and fragments from the embedded templates.
type pages struct {
	byName map[string]*template.Template // page name to its template set
	static map[string][]byte             // static file name to contents
	// version is a hash of the static files, appended to asset URLs so browsers can cache them
	// for good.
	version string
}

// pageNames are the pages, each in web/templates/<name>.html defining "content".
var pageNames = []string{"overview", "tasks", "task", "queues", "error"}

func newPages(base string) (*pages, error) {
	p := &pages{byName: map[string]*template.Template{}, static: map[string][]byte{}}
	files, err := fs.Glob(webFS, "web/static/*")
	if err != nil {
		return nil, fmt.Errorf("list static files: %w", err)
	}
	h := sha256.New()
	for _, f := range files {
		b, err := webFS.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("read static file %s: %w", f, err)
		}
		p.static[path.Base(f)] = b
		h.Write(b)
	}
	p.version = hex.EncodeToString(h.Sum(nil))[:12]

	funcs := template.FuncMap{
		"path":       func(route string) string { return base + route },
		"asset":      func(name string) string { return base + "/static/" + name + "?v=" + p.version },
		"time":       formatTime,
		"ptime":      func(t *time.Time) string { return formatTimePtr(t) },
		"dur":        formatDuration,
		"pct":        func(v float64) string { return strconv.Itoa(int(v*100+0.5)) + "%" },
		"rate":       func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) },
		"stateClass": stateClass,
		"pretty":     prettyJSON,
		"join":       strings.Join,
		"lower":      strings.ToLower,
		"between": func(from, to *time.Time) string {
			if from == nil || to == nil {
				return ""
			}
			return formatDuration(to.Sub(*from))
		},
		"states": task.States,
	}
	layout, err := template.New("layout").Funcs(funcs).ParseFS(webFS, "web/templates/layout.html", "web/templates/fragments.html")
	if err != nil {
		return nil, fmt.Errorf("parse layout templates: %w", err)
	}
	for _, name := range pageNames {
		t, err := layout.Clone()
		if err == nil {
			t, err = t.ParseFS(webFS, "web/templates/"+name+".html")
		}
		if err != nil {
			return nil, fmt.Errorf("parse template %s: %w", name, err)
		}
		p.byName[name] = t
	}
	return p, nil
}

// render writes the named page.
func (p *pages) render(w http.ResponseWriter, status int, name string, data any) error {
	var buf bytes.Buffer
	if err := p.byName[name].ExecuteTemplate(&buf, "layout", data); err != nil {
		return fmt.Errorf("render page %s: %w", name, err)
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	// Scripts, styles and connections come from the monitor only; charts are inline SVG.
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; "+
		"script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
	w.WriteHeader(status)
	_, err := w.Write(buf.Bytes())
	return err
}

// fragment renders the named fragment template to a string.
func (p *pages) fragment(name string, data any) (string, error) {
	var buf bytes.Buffer
	if err := p.byName["overview"].ExecuteTemplate(&buf, name, data); err != nil {
		return "", fmt.Errorf("render fragment %s: %w", name, err)
	}
	return buf.String(), nil
}

// static serves an embedded asset. Asset URLs carry a content hash, so responses may be cached
// for a year.
func (m *Monitor) static(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("file")
	body, ok := m.pages.static[name]
	if !ok {
		return &requestError{status: http.StatusNotFound, msg: "no static file " + name}
	}
	ctype := mime.TypeByExtension(path.Ext(name))
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	_, err := w.Write(body)
	return err
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05.000")
}

func formatTimePtr(t *time.Time) string {
	if t == nil {
		return ""
	}
	return formatTime(*t)
}

// prettyJSON indents raw JSON for display; anything that is not JSON is returned as it is.
func prettyJSON(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "null"
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return string(raw)
	}
	return buf.String()
}
