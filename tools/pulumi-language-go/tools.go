//go:build tools

// Package tools lists the Go language host that scripts/cluster-tools builds
// from this module. sdk/v3 v3.62.0 is the newest release that still contains
// the host as a package. Later releases moved it into a separate module. The
// build tag keeps the file out of every build, and the import keeps the
// host's packages in go.mod and go.sum.
package tools

import _ "github.com/pulumi/pulumi/sdk/v3/go/pulumi-language-go"
