// Command pulumi-resource-kubernetes serves the Pulumi Kubernetes provider
// from the provider/v4 module.
//
// The upstream command cannot be built from the module zip because it embeds
// a generated, versioned copy of the schema that the zip does not contain.
// This wrapper embeds the copies that generate.go writes next to this file,
// so run `go generate` before `go build`. scripts/cluster-tools does both.
package main

import (
	_ "embed"

	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/provider"
	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version"
)

//go:generate go run generate.go

// providerName is the package name that programs and the engine use.
const providerName = "kubernetes"

//go:embed schema-embed.json
var schema []byte

//go:embed terraform-mapping-embed.json
var terraformMapping []byte

func main() {
	provider.Serve(providerName, version.Version, schema, terraformMapping)
}
