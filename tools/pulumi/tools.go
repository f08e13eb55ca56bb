//go:build tools

// Package tools lists the Pulumi CLI command that scripts/cluster-tools
// builds from this module. The build tag keeps the file out of every build,
// and the import keeps the command's packages in go.mod and go.sum.
package tools

import _ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"
