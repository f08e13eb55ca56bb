package task

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestLoneSurrogate(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name       string
		raw        string
		wantEscape string
		wantFound  bool
	}{
		{name: "no escapes", raw: `"plain"`},
		{name: "other escapes", raw: `"a\n\t\"\\\/\u0041"`},
		{name: "valid pair", raw: `"\ud83d\ude00"`},
		{name: "valid pair upper case", raw: `"\uD83D\uDE00"`},
		{name: "lone high", raw: `"\ud800"`, wantEscape: `\ud800`, wantFound: true},
		{name: "lone low", raw: `"x\udfff"`, wantEscape: `\udfff`, wantFound: true},
		{name: "high then letter", raw: `"\ud800\u0041"`, wantEscape: `\ud800`, wantFound: true},
		{name: "two highs", raw: `"\ud800\ud800"`, wantEscape: `\ud800`, wantFound: true},
		{name: "high at string end", raw: `["\ud800","\udc00"]`, wantEscape: `\ud800`, wantFound: true},
		{name: "escaped backslash", raw: `"\\ud800"`},
		{name: "outside strings", raw: `{"a":[1,2,{"b":"\u00e9"}]}`},
		{name: "low after pair", raw: `"\ud83d\ude00\ude00"`, wantEscape: `\ude00`, wantFound: true},
		{name: "in key", raw: `{"\udc00":1}`, wantEscape: `\udc00`, wantFound: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			escape, found := loneSurrogate([]byte(tt.raw))
			if found != tt.wantFound || escape != tt.wantEscape {
				t.Errorf("loneSurrogate(%s) = %q, %v, want %q, %v", tt.raw, escape, found, tt.wantEscape, tt.wantFound)
			}
		})
	}
}

func TestSchemaOf(t *testing.T) {
	t.Parallel()

	type tagged struct {
		Plain   int
		Renamed int `json:"renamed,omitempty"`
		Skipped int `json:"-"`
		Dash    int `json:"-,"`
		hidden  int
	}
	type embedded struct {
		tagged
		Extra int `json:"extra"`
	}

	tests := []struct {
		name      string
		schema    argSchema
		wantNames []string
	}{
		{name: "tagged", schema: schemaOf(typeOf[tagged]()), wantNames: []string{"-", "Plain", "renamed"}},
		{name: "pointer", schema: schemaOf(typeOf[*tagged]()), wantNames: []string{"-", "Plain", "renamed"}},
		{name: "embedded", schema: schemaOf(typeOf[embedded]()), wantNames: nil},
		{name: "not a struct", schema: schemaOf(typeOf[map[string]int]()), wantNames: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tt.wantNames, tt.schema.names); diff != "" {
				t.Errorf("schema names mismatch (-want +got):\n%s", diff)
			}
			if (tt.schema.fields == nil) != (tt.wantNames == nil) {
				t.Errorf("schema fields = %v, want nil exactly when names are nil", tt.schema.fields)
			}
		})
	}
	_ = tagged{}.hidden
}

func typeOf[T any]() reflect.Type { return reflect.TypeFor[T]() }

// FuzzValidate checks that Validate never panics on arbitrary bytes, reports every problem as a
// *FieldError, and returns canonical args that validate to the same bytes again.
func FuzzValidate(f *testing.F) {
	f.Add([]byte(`{"n":3,"name":"a","tags":["x"],"ratio":0.5,"flag":true}`))
	f.Add([]byte(`{"n":1,"inner":{"x":2},"small":-128,"count":7}`))
	f.Add([]byte(`{"n":1,"name":"\ud83d\ude00\u00e9\\\"<>&"}`))
	f.Add([]byte(`{"n":1,"name":"\ud800"}`))
	f.Add([]byte("{\"n\":1,\"name\":\"\xff\"}"))
	f.Add([]byte(`{"n":1,"n":2} [`))
	f.Add([]byte(`null`))

	r := NewRegistry()
	Register(r, Definition[testArgs]{Name: "echo", Run: failingHandler})
	f.Fuzz(func(t *testing.T, raw []byte) {
		canonical, err := r.Validate("echo", raw)
		if err != nil {
			var fieldErr *FieldError
			var panicErr *PanicError
			if errors.As(err, &panicErr) && panicErr.Value == "validate panicked" {
				return // testArgs panics on purpose for the name "panic"
			}
			if !errors.As(err, &fieldErr) {
				t.Fatalf("Validate(%q) error = %v (%T), want *FieldError", raw, err, err)
			}
			if fieldErr.Field != "args" && !strings.HasPrefix(fieldErr.Field, "args.") {
				t.Errorf("Validate(%q) field = %q, want args or args.<name>", raw, fieldErr.Field)
			}
			return
		}

		again, err := r.Validate("echo", canonical)
		if err != nil {
			t.Fatalf("Validate(%s) of canonical args error = %v", canonical, err)
		}
		if diff := cmp.Diff(string(canonical), string(again)); diff != "" {
			t.Errorf("canonical args change when validated again (-first +second):\n%s", diff)
		}
	})
}
