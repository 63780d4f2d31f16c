// Package schematest is test support for `conduit schema`: it compiles a schema file with an
// independent JSON Schema validator (santhosh-tekuri/jsonschema), not Conduit's decoder, so
// tests can check configs against what editors see.
package schematest

import (
	"os"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/conduitproxy/conduit/core/cli"
)

// Compile compiles the schema file at path (contrib/conduit.schema.json) under cli.SchemaID.
func Compile(t testing.TB, path string) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(cli.SchemaID, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(cli.SchemaID)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
