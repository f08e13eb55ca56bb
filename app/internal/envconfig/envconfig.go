// Package envconfig reads service settings from environment variables, the way a Kubernetes
// Deployment passes them. A Reader collects every problem instead of stopping at the first, so a
// service that starts with several bad settings names all of them in one message.
package envconfig

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Reader reads typed settings from a lookup function. The zero value is not usable; call New or
// FromEnv. A Reader is not safe for concurrent use.
type Reader struct {
	lookup func(string) (string, bool)
	errs   []error
}

// New returns a Reader that looks settings up with lookup.
func New(lookup func(string) (string, bool)) *Reader {
	return &Reader{lookup: lookup}
}

// FromEnv returns a Reader over the process environment.
func FromEnv() *Reader {
	return New(os.LookupEnv)
}

// Err returns every problem found so far, joined, or nil.
func (r *Reader) Err() error {
	return errors.Join(r.errs...)
}

func (r *Reader) fail(name, format string, args ...any) {
	r.errs = append(r.errs, fmt.Errorf("invalid setting %s: %s", name, fmt.Sprintf(format, args...)))
}

// value returns the trimmed value of name and whether it is set to something non-empty.
func (r *Reader) value(name string) (string, bool) {
	v, ok := r.lookup(name)
	v = strings.TrimSpace(v)
	return v, ok && v != ""
}

// String returns the value of name, or def when it is unset or empty.
func (r *Reader) String(name, def string) string {
	if v, ok := r.value(name); ok {
		return v
	}
	return def
}

// OneOf returns the value of name, or def when unset; any value outside allowed is an error.
func (r *Reader) OneOf(name, def string, allowed ...string) string {
	v := r.String(name, def)
	if !slices.Contains(allowed, v) {
		r.fail(name, "%q is not one of %s", v, strings.Join(allowed, ", "))
	}
	return v
}

// Int returns the integer value of name, or def when unset. The value must lie in [minimum, maximum].
func (r *Reader) Int(name string, def, minimum, maximum int) int {
	v, ok := r.value(name)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		r.fail(name, "%q is not an integer", v)
		return def
	}
	if n < minimum || n > maximum {
		r.fail(name, "%d is outside the range %d..%d", n, minimum, maximum)
		return def
	}
	return n
}

// Bool returns the boolean value of name ("true", "false", "1", "0"), or def when unset.
func (r *Reader) Bool(name string, def bool) bool {
	v, ok := r.value(name)
	if !ok {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		r.fail(name, "%q is not a boolean (use true or false)", v)
		return def
	}
	return b
}

// Duration returns the value of name as a Go duration such as "250ms" or "5m", or def when unset.
// The value must lie in [minimum, maximum].
func (r *Reader) Duration(name string, def, minimum, maximum time.Duration) time.Duration {
	v, ok := r.value(name)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		r.fail(name, "%q is not a duration (examples: 500ms, 30s, 5m)", v)
		return def
	}
	if d < minimum || d > maximum {
		r.fail(name, "%s is outside the range %s..%s", d, minimum, maximum)
		return def
	}
	return d
}

// URL returns the value of name parsed as a URL with one of the given schemes and a host. It is an
// error when the setting is unset. Error messages never include the value, because URLs of this
// kind carry passwords.
func (r *Reader) URL(name string, schemes ...string) string {
	v, ok := r.value(name)
	if !ok {
		r.fail(name, "missing; set it to a URL such as %s://user:password@host/", schemes[0])
		return ""
	}
	u, err := url.Parse(v)
	if err != nil {
		r.fail(name, "not a valid URL (the value is not shown because it may contain a password)")
		return ""
	}
	if !slices.Contains(schemes, u.Scheme) {
		r.fail(name, "the scheme is %q; expected %s", u.Scheme, strings.Join(schemes, " or "))
		return ""
	}
	if u.Host == "" {
		r.fail(name, "the URL has no host")
		return ""
	}
	return v
}

// Addr returns a listen address such as ":5000" or "127.0.0.1:8080", or def when unset.
func (r *Reader) Addr(name, def string) string {
	v := r.String(name, def)
	_, port, err := net.SplitHostPort(v)
	if err != nil {
		r.fail(name, "%q is not a host:port listen address", v)
		return def
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		r.fail(name, "%q has an invalid port; use a number in 0..65535", v)
		return def
	}
	return v
}
