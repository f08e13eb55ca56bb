package monitor

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Config holds the monitor settings. Zero fields take the defaults of WithDefaults.
type Config struct {
	// Prefix is the URL path under which every page, asset, API route and event stream is
	// served, such as "/flower". "/" serves from the root. Default "/flower".
	Prefix string
	// Queue is the work queue. Its dead-letter, poison and delay queues are named after it, as
	// broker.Topology names them. Default "tasks".
	Queue string
	// ReadToken grants read access, AdminToken read access and the actions. Either may be empty.
	// Clients send a token as "Authorization: Bearer <token>" or as the password of HTTP Basic
	// authentication with any user name.
	ReadToken  string
	AdminToken string
	// AllowOpen lets requests without a token read everything. Without it, New rejects a
	// configuration that has no token at all. It never grants the actions.
	AllowOpen bool
	// OfflineAfter is how long a worker may stay silent before it shows offline. A worker whose
	// heartbeat interval is longer than a third of it gets three of its own intervals instead.
	// Default 15s.
	OfflineAfter time.Duration
	// ForgetAfter is how long after its last event an offline worker stays in the list and the
	// metrics. Default 5m.
	ForgetAfter time.Duration
	// RefreshInterval is how often Run reads queue figures, task counts and charts for the live
	// pages and the metrics. Default 5s.
	RefreshInterval time.Duration
	// ChartMinutes is the number of minutes the throughput and latency charts cover. Default 30.
	ChartMinutes int
	// MaxStreams caps the open event streams. Default 100.
	MaxStreams int
}

// Limits on settings and request parameters.
const (
	minTokenLength      = 16
	defaultPageSize     = 50
	maxPageSize         = 500
	defaultBrowseLimit  = 50
	maxBrowseLimit      = 500
	maxChartMinutes     = 1440
	maxRequeuePerAction = 10000
)

// WithDefaults returns c with zero fields set to their defaults and trailing slashes removed
// from the prefix.
func (c Config) WithDefaults() Config {
	if c.Prefix == "" {
		c.Prefix = "/flower"
	}
	if c.Prefix = strings.TrimRight(c.Prefix, "/"); c.Prefix == "" {
		c.Prefix = "/"
	}
	if c.Queue == "" {
		c.Queue = "tasks"
	}
	if c.OfflineAfter <= 0 {
		c.OfflineAfter = 15 * time.Second
	}
	if c.ForgetAfter <= 0 {
		c.ForgetAfter = 5 * time.Minute
	}
	if c.RefreshInterval <= 0 {
		c.RefreshInterval = 5 * time.Second
	}
	if c.ChartMinutes <= 0 {
		c.ChartMinutes = 30
	}
	if c.MaxStreams <= 0 {
		c.MaxStreams = 100
	}
	return c
}

// Validate reports every setting that cannot work. It expects a Config returned by WithDefaults.
func (c Config) Validate() error {
	var errs []error
	if !strings.HasPrefix(c.Prefix, "/") || strings.ContainsAny(c.Prefix, "?#{}% ") {
		errs = append(errs, fmt.Errorf("URL prefix %q must be a path such as /flower", c.Prefix))
	}
	if c.ReadToken == "" && c.AdminToken == "" && !c.AllowOpen {
		errs = append(errs, errors.New("no token is set: set MONITOR_READ_TOKEN and MONITOR_ADMIN_TOKEN, "+
			"or MONITOR_ALLOW_OPEN=true for read-only access without a token"))
	}
	for name, token := range map[string]string{"read": c.ReadToken, "admin": c.AdminToken} {
		if token != "" && len(token) < minTokenLength {
			errs = append(errs, fmt.Errorf("the %s token is %d characters long; use at least %d", name, len(token), minTokenLength))
		}
	}
	if c.ReadToken != "" && c.ReadToken == c.AdminToken {
		errs = append(errs, errors.New("the read and admin tokens are equal; use two different tokens"))
	}
	if c.ForgetAfter < c.OfflineAfter {
		errs = append(errs, fmt.Errorf("forget-after %s is shorter than offline-after %s", c.ForgetAfter, c.OfflineAfter))
	}
	if c.ChartMinutes > maxChartMinutes {
		errs = append(errs, fmt.Errorf("chart minutes %d is above the maximum of %d", c.ChartMinutes, maxChartMinutes))
	}
	return errors.Join(errs...)
}

// base returns the prefix without a trailing slash: "" for the root.
func (c Config) base() string {
	return strings.TrimSuffix(c.Prefix, "/")
}
