package docs_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	yaml "go.yaml.in/yaml/v3"

	"github.com/conduitproxy/conduit/core/cli/schematest"
)

// TestDocConfigBlocksMatchSchema: every config block of docs/*.md and README.md that is not
// marked invalid (the configs TestDocConfigBlocksValidate builds, by the same rules) validates
// against contrib/conduit.schema.json with an independent validator
// (santhosh-tekuri/jsonschema), as an editor sees it: before $VAR substitution.
func TestDocConfigBlocksMatchSchema(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	schema := schematest.Compile(t, filepath.Join(root, "contrib", "conduit.schema.json"))
	checked := 0
	for _, b := range docBlocks(t, root) {
		if b.invalid != "" {
			continue
		}
		for _, c := range configsOf(b) {
			v, err := jsonValue(c)
			if err != nil {
				t.Errorf("%s:%d: %v", b.page, b.line, err)
				continue
			}
			checked++
			if err := schema.Validate(v); err != nil {
				t.Errorf("%s:%d does not validate against the schema: %v\n--- config ---\n%s", b.page, b.line, err, c)
			}
		}
	}
	if checked < 20 {
		t.Fatalf("checked %d config blocks of docs/*.md; want at least 20", checked)
	}
}

// jsonValue reads a YAML (or JSON) config as the JSON value the validator takes.
func jsonValue(text string) (any, error) {
	var v any
	if err := yaml.Unmarshal([]byte(text), &v); err != nil {
		return nil, fmt.Errorf("yaml: %w", err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("json: %w", err)
	}
	return jsonschema.UnmarshalJSON(bytes.NewReader(b))
}
