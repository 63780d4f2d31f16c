package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/conduitproxy/conduit/core/cli"
	"github.com/conduitproxy/conduit/core/cli/schematest"
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
	return schematest.Compile(t, schemaFile)
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

// compatRefused are the compat files the schema refuses, each for shapes `conduit validate`
// refuses too (testdata/compat/README.md: the validator fixtures hold invalid settings on
// purpose).
var compatRefused = map[string]string{
	"validators_sink.json": "middleware[] entries validate refuses: a script entry without path, the reserved guard types ipFilter, rateLimit and auth, and the unknown type magic",
}

// TestCompatFilesValidateAgainstSchema: every config of testdata/compat (the original's
// examples) validates against the schema with santhosh-tekuri/jsonschema, not our decoder,
// except the fixtures of compatRefused, which it must refuse; and shapes the decoder refuses
// in the keys the schema types are refused by the schema too.
func TestCompatFilesValidateAgainstSchema(t *testing.T) {
	s := compileSchema(t)
	files, _ := filepath.Glob("../../testdata/compat/*")
	n := 0
	for _, f := range files {
		if ext := filepath.Ext(f); ext != ".yaml" && ext != ".yml" && ext != ".json" {
			continue
		}
		n++
		err := s.Validate(asJSONValue(t, f))
		if reason, refused := compatRefused[filepath.Base(f)]; refused {
			if err == nil {
				t.Errorf("the schema accepts %s, which holds %s", f, reason)
			}
			continue
		}
		if err != nil {
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
// server.Build) and fails when they disagree, in either direction:
//   - a document the schema refuses must be refused by validate too (any error), so an
//     editor never flags a config Conduit serves;
//   - a document validate refuses for a shape error (the class isShapeMessage defines, at a
//     path under a key the schema types) must be refused by the schema too. A document with a
//     whole-value "$NAME" is not compared this way: substitution may retype it.
//
// Seeds: every testdata/compat file, badShapes, goodShapes and a few more.
func FuzzSchemaNeverStricterThanValidate(f *testing.F) {
	files, _ := filepath.Glob("../../testdata/compat/*")
	for _, p := range files {
		if ext := filepath.Ext(p); ext == ".yaml" || ext == ".json" {
			if b, err := json.Marshal(asJSONValue(f, p)); err == nil {
				f.Add(string(b))
			}
		}
	}
	for _, c := range badShapes {
		f.Add(c.doc)
	}
	for _, s := range goodShapes {
		f.Add(s)
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
	var typedSite, typedGlobal map[string]bool
	f.Fuzz(func(t *testing.T, doc string) {
		if schema == nil {
			schema = compileSchema(t)
			typedSite, typedGlobal = typedKeys()
		}
		v, err := jsonschema.UnmarshalJSON(strings.NewReader(doc))
		if err != nil {
			return
		}
		schemaErr := schema.Validate(v)
		d, err := validateDiagnostics(t, doc)
		if err != nil {
			return
		}
		if schemaErr != nil && !d.HasErrors() {
			t.Fatalf("the schema refuses a config validate accepts: %s\n%v", doc, schemaErr)
		}
		if schemaErr == nil && !envReference.MatchString(doc) {
			if se := shapeErrors(d, typedSite, typedGlobal); len(se) > 0 {
				t.Fatalf("the schema accepts a config validate refuses for its shape: %s\n%v", doc, se)
			}
		}
	})
}
