package monitor

import (
	"encoding/base64"
	"net/http/httptest"
	"strings"
	"testing"
)

const (
	testReadToken  = "read-token-0123456789"
	testAdminToken = "admin-token-0123456789"
)

func basic(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

func TestRoleOf(t *testing.T) {
	t.Parallel()
	both := Config{ReadToken: testReadToken, AdminToken: testAdminToken}
	cases := []struct {
		name   string
		cfg    Config
		header string
		want   role
	}{
		{"no header", both, "", roleNone},
		{"bearer read", both, "Bearer " + testReadToken, roleRead},
		{"bearer admin", both, "Bearer " + testAdminToken, roleAdmin},
		{"bearer scheme in lower case", both, "bearer " + testAdminToken, roleAdmin},
		{"basic admin with any user", both, basic("someone", testAdminToken), roleAdmin},
		{"basic read", both, basic("", testReadToken), roleRead},
		{"wrong token", both, "Bearer " + testAdminToken + "x", roleNone},
		{"token prefix", both, "Bearer " + testAdminToken[:10], roleNone},
		{"basic without password", both, basic(testAdminToken, ""), roleNone},
		{"malformed basic", both, "Basic !!!", roleNone},
		{"unknown scheme", both, "Token " + testAdminToken, roleNone},
		{"open without header", Config{AllowOpen: true}, "", roleRead},
		{"open with admin token", Config{AllowOpen: true, AdminToken: testAdminToken}, "Bearer " + testAdminToken, roleAdmin},
		{"open with a wrong token", Config{AllowOpen: true, AdminToken: testAdminToken}, "Bearer nope", roleNone},
		{"empty admin token never matches", Config{ReadToken: testReadToken}, "Bearer ", roleNone},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest("GET", "/flower/", nil)
			if c.header != "" {
				r.Header.Set("Authorization", c.header)
			}
			if got := newAuthenticator(c.cfg).roleOf(r); got != c.want {
				t.Errorf("roleOf(%q) = %s, want %s", c.header, got, c.want)
			}
		})
	}
}

func TestCheckAccess(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name        string
		access      access
		role        role
		token       bool // the request carries an Authorization header
		contentType string
		fetchSite   string
		wantStatus  int // 0 means allowed
	}{
		{"open route without token", open, roleNone, false, "", "", 0},
		{"read route without token", readOnly, roleNone, false, "", "", 401},
		{"read route with read token", readOnly, roleRead, true, "", "", 0},
		{"action with read token", adminOnly, roleRead, true, "application/json", "", 403},
		{"action in open mode without token", adminOnly, roleRead, false, "application/json", "", 401},
		{"action without token", adminOnly, roleNone, false, "application/json", "", 401},
		{"action with admin token", adminOnly, roleAdmin, true, "application/json", "", 0},
		{"action with charset", adminOnly, roleAdmin, true, "application/json; charset=utf-8", "same-origin", 0},
		{"action from a form", adminOnly, roleAdmin, true, "application/x-www-form-urlencoded", "", 415},
		{"action without content type", adminOnly, roleAdmin, true, "", "", 415},
		{"action from another site", adminOnly, roleAdmin, true, "application/json", "cross-site", 403},
		{"action from a sibling site", adminOnly, roleAdmin, true, "application/json", "same-site", 403},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest("POST", "/flower/api/tasks/x/retry", strings.NewReader("{}"))
			if c.token {
				r.Header.Set("Authorization", "Bearer some-token")
			}
			if c.contentType != "" {
				r.Header.Set("Content-Type", c.contentType)
			}
			if c.fetchSite != "" {
				r.Header.Set("Sec-Fetch-Site", c.fetchSite)
			}
			err := checkAccess(r, c.access, c.role)
			got := 0
			if reqErr, ok := err.(*requestError); ok {
				got = reqErr.status
			} else if err != nil {
				t.Fatalf("checkAccess returned %T %v, want a *requestError", err, err)
			}
			if got != c.wantStatus {
				t.Errorf("status = %d, want %d (err %v)", got, c.wantStatus, err)
			}
		})
	}
}
