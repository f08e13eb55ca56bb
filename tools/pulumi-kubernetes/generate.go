//go:build ignore

// Generate writes schema-embed.json and terraform-mapping-embed.json into the
// current directory from schema.json and terraform-mapping.json in the
// provider/v4 module's command directory, as main.go embeds them.
//
// The schema's "version" field is set from the VERSION environment variable
// (for example 4.25.0). Set it to the version linked into the binary with
// -X .../provider/v4/pkg/version.Version, so that the schema the provider
// serves names the same version as the plugin.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

const providerModule = "github.com/pulumi/pulumi-kubernetes/provider/v4"

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "generate:", err)
		os.Exit(1)
	}
}

func run() error {
	version := os.Getenv("VERSION")
	if version == "" {
		return fmt.Errorf("VERSION is not set: set it to the provider version, for example VERSION=4.25.0")
	}

	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", providerModule).Output()
	if err != nil {
		return fmt.Errorf("locate module %s: %w", providerModule, err)
	}
	commandDir := filepath.Join(strings.TrimSpace(string(out)), "cmd", "pulumi-resource-kubernetes")

	schema, err := readObject(filepath.Join(commandDir, "schema.json"))
	if err != nil {
		return err
	}
	versionJSON, err := json.Marshal(version)
	if err != nil {
		return fmt.Errorf("encode version %q: %w", version, err)
	}
	schema["version"] = versionJSON
	if err := writeJSON("schema-embed.json", schema); err != nil {
		return err
	}

	mapping, err := readObject(filepath.Join(commandDir, "terraform-mapping.json"))
	if err != nil {
		return err
	}
	return writeJSON("terraform-mapping-embed.json", mapping)
}

// readObject decodes a JSON object, keeping each field's value as raw JSON so
// that nothing but the fields the caller sets changes.
func readObject(path string) (map[string]json.RawMessage, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	var object map[string]json.RawMessage
	if err := json.Unmarshal(data, &object); err != nil {
		return nil, fmt.Errorf("decode %s: %w", path, err)
	}
	return object, nil
}

// writeJSON writes value as compact JSON. For the schema at this provider
// version that is 5.2 MB to embed instead of the 7.4 MB indented source.
func writeJSON(path string, value any) error {
	data, err := json.Marshal(value)
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, data); err != nil {
		return fmt.Errorf("compact %s: %w", path, err)
	}
	if err := os.WriteFile(path, compact.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
