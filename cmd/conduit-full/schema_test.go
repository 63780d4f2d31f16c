package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/conduitproxy/conduit/core/cli"
	"github.com/conduitproxy/conduit/core/config"
	"github.com/conduitproxy/conduit/core/server"
	"github.com/santhosh-tekuri/jsonschema/v6"
	yaml "go.yaml.in/yaml/v3"
)

//go:generate sh -c "go run . schema > ../../contrib/conduit.schema.json"

// schemaFile is the full bundle's schema, checked in for editors.
const schemaFile = "../../contrib/conduit.schema.json"

// TestSchemaFileIsCurrent: contrib/conduit.schema.json is what `conduit-full schema` prints
// (regenerate with `go generate ./cmd/conduit-full`).
func TestSchemaFileIsCurrent(t *testing.T) {
	want, err := cli.SchemaJSON()
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is stale: run go generate ./cmd/conduit-full", schemaFile)
	}
}

// compileSchema compiles the checked-in schema with an independent JSON Schema validator.
func compileSchema(t testing.TB) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open(schemaFile)
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

// asJSONValue reads a YAML or JSON config as the JSON value the validator takes.
func asJSONValue(t testing.TB, path string) any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if strings.HasSuffix(path, ".json") {
		v, err = jsonschema.UnmarshalJSON(bytes.NewReader(data))
	} else {
		err = yaml.Unmarshal(data, &v)
		if err == nil {
			// Through JSON, so numbers and maps have the types the validator expects.
			var b []byte
			if b, err = json.Marshal(v); err == nil {
				v, err = jsonschema.UnmarshalJSON(bytes.NewReader(b))
			}
		}
	}
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return v
}

// TestCompatFilesValidateAgainstSchema: every config of testdata/compat (the original's
// examples) validates against the schema with santhosh-tekuri/jsonschema, not our decoder;
// and shapes the decoder refuses in the keys the schema types are refused by the schema too.
func TestCompatFilesValidateAgainstSchema(t *testing.T) {
	s := compileSchema(t)
	files, _ := filepath.Glob("../../testdata/compat/*")
	n := 0
	for _, f := range files {
		if ext := filepath.Ext(f); ext != ".yaml" && ext != ".yml" && ext != ".json" {
			continue
		}
		n++
		if err := s.Validate(asJSONValue(t, f)); err != nil {
			t.Errorf("%s does not validate against the schema: %v", f, err)
		}
	}
	if n < 20 {
		t.Fatalf("only %d compat files", n)
	}
	for _, bad := range []string{
		`{"port": 8080, "responseTime": "yes"}`,
		`{"port": 8080, "responseTime": {"digits": 9}}`,
		`{"port": 8080, "serverTiming": 1}`,
		`{"sites": [{"port": "x", "responseTime": []}]}`,
		`{"global": {"workers": "many"}, "sites": []}`,
		`{"global": {}, "sites": {"port": 8080}}`,
		`{"port": 70000}`,
	} {
		v, err := jsonschema.UnmarshalJSON(strings.NewReader(bad))
		if err != nil {
			t.Fatal(err)
		}
		if s.Validate(v) == nil {
			t.Errorf("the schema accepts %s", bad)
		}
	}
}

// FuzzSchemaNeverStricterThanValidate feeds the same JSON document to the schema (through an
// independent validator) and to the pipeline of `conduit validate` (config.Parse,
// server.Build): a document the schema refuses must be refused by validate too, so an editor
// never flags a config Conduit serves. Seeds: every testdata/compat file and shape errors.
func FuzzSchemaNeverStricterThanValidate(f *testing.F) {
	files, _ := filepath.Glob("../../testdata/compat/*")
	for _, p := range files {
		if ext := filepath.Ext(p); ext == ".yaml" || ext == ".json" {
			if b, err := json.Marshal(asJSONValue(f, p)); err == nil {
				f.Add(string(b))
			}
		}
	}
	for _, s := range []string{
		`{"port": 8080, "responseTime": {"digits": 9}}`, `{"port": 8080, "responseTime": true}`,
		`{"sites": [{"port": 8080}], "global": {"workers": 2}}`, `[{"port": 1}]`, `{"port": 8080.5}`,
		`{"port": 8080, "limits": {"maxBodyBytes": 10}, "cors": {"origins": ["*"]}, "healthCheck": {"path": "/h"}}`,
		`{"port": 8080, "ipFilter": {"allow": ["10.0.0.0/8"]}, "securityHeaders": true, "metrics": {"path": "/m"}}`,
	} {
		f.Add(s)
	}
	var schema *jsonschema.Schema
	f.Fuzz(func(t *testing.T, doc string) {
		if schema == nil {
			schema = compileSchema(t)
		}
		v, err := jsonschema.UnmarshalJSON(strings.NewReader(doc))
		if err != nil || schema.Validate(v) == nil {
			return
		}
		parsed, err := config.Parse([]byte(doc), config.FormatJSON, nil)
		if err != nil {
			return
		}
		parsed.Path = filepath.Join(t.TempDir(), "conduit.json")
		g, d := server.Build(context.Background(), parsed, server.BuildOptions{Logger: slog.New(slog.DiscardHandler)})
		if !d.HasErrors() {
			g.Stop(context.Background())
			t.Fatalf("the schema refuses a config validate accepts: %s\n%v", doc, schema.Validate(v))
		}
	})
}
