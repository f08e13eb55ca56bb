package monitor

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"strings"
)

// role is the access level of a request.
type role int

const (
	roleNone  role = iota // no valid token, and open access is off
	roleRead              // see everything, change nothing
	roleAdmin             // see everything and run actions
)

func (r role) String() string {
	switch r {
	case roleAdmin:
		return "admin"
	case roleRead:
		return "read-only"
	default:
		return "none"
	}
}

// authenticator maps the Authorization header to a role.
type authenticator struct {
	read, admin [sha256.Size]byte // hashes, so comparisons take the same time for any length
	hasRead     bool
	hasAdmin    bool
	allowOpen   bool
}

func newAuthenticator(cfg Config) *authenticator {
	return &authenticator{
		read: sha256.Sum256([]byte(cfg.ReadToken)), hasRead: cfg.ReadToken != "",
		admin: sha256.Sum256([]byte(cfg.AdminToken)), hasAdmin: cfg.AdminToken != "",
		allowOpen: cfg.AllowOpen,
	}
}

// roleOf returns the role of r. A wrong token gives roleNone even with open access, so a client
// with a mistyped token learns about it instead of silently losing the actions.
func (a *authenticator) roleOf(r *http.Request) role {
	token, ok := credential(r.Header.Get("Authorization"))
	if !ok {
		if a.allowOpen {
			return roleRead
		}
		return roleNone
	}
	got := sha256.Sum256([]byte(token))
	// Both comparisons always run, so the timing does not tell which token matched.
	isAdmin := subtle.ConstantTimeCompare(got[:], a.admin[:]) == 1 && a.hasAdmin
	isRead := subtle.ConstantTimeCompare(got[:], a.read[:]) == 1 && a.hasRead
	switch {
	case isAdmin:
		return roleAdmin
	case isRead:
		return roleRead
	default:
		return roleNone
	}
}

// credential extracts the token from "Bearer <token>" or from the password of
// "Basic base64(user:password)". ok is false when the header is absent or malformed.
func credential(header string) (token string, ok bool) {
	scheme, value, found := strings.Cut(header, " ")
	if !found {
		return "", false
	}
	value = strings.TrimSpace(value)
	switch strings.ToLower(scheme) {
	case "bearer":
		return value, value != ""
	case "basic":
		raw, err := base64.StdEncoding.DecodeString(value)
		if err != nil {
			return "", false
		}
		_, password, found := strings.Cut(string(raw), ":")
		return password, found && password != ""
	}
	return "", false
}

type roleKey struct{}

func withRole(ctx context.Context, r role) context.Context {
	return context.WithValue(ctx, roleKey{}, r)
}

func roleFrom(ctx context.Context) role {
	r, _ := ctx.Value(roleKey{}).(role)
	return r
}
