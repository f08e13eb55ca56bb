// Package logging builds the JSON slog logger every service uses and keeps credentials out of it.
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
)

// New returns a JSON logger that writes to w at the named level (debug, info, warn or error) and
// tags every record with the service name.
func New(w io.Writer, level, service string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("parse log level %q: use debug, info, warn or error", level)
	}
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})
	return slog.New(h).With("service", service), nil
}

// SecretURL is a connection URL that logs and prints without its password.
type SecretURL string

// LogValue implements slog.LogValuer.
func (u SecretURL) LogValue() slog.Value {
	return slog.StringValue(Redact(string(u)))
}

// String returns the URL with its password replaced.
func (u SecretURL) String() string {
	return Redact(string(u))
}

// Redact returns raw with any password replaced by "xxxxx". A value that does not parse as a URL
// is replaced entirely, because it may still contain a secret.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	q := u.Query()
	for key := range q {
		if strings.Contains(strings.ToLower(key), "password") {
			q.Set(key, "xxxxx")
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}
