package config

import (
	"encoding/json"
	"testing"
)

type schemaInner struct {
	Name string `json:"name" cfg:"required"`
}

type schemaSample struct {
	Port    int                    `json:"port"`
	Ratio   float64                `json:"ratio"`
	On      *bool                  `json:"on"`
	Tags    []string               `json:"tags"`
	Hdrs    map[string]schemaInner `json:"headers"`
	Timeout Humantime              `json:"timeout"`
	Token   Secret                 `json:"token"`
	Any     Node                   `json:"any"`
	Skip    string                 `json:"-"`
	Self    *schemaSample          `json:"self"`
}

// TestSchemaFollowsDecode: the schema config.Schema reflects from a struct, field by field,
// as Decode reads it.
func TestSchemaFollowsDecode(t *testing.T) {
	got := Schema(&schemaSample{})
	props := got["properties"].(map[string]any)
	want := map[string]string{
		"port":    `{"type":"integer"}`,
		"ratio":   `{"type":"number"}`,
		"on":      `{"type":"boolean"}`,
		"tags":    `{"items":{"type":["string","number","boolean"]},"type":["array","null"]}`,
		"headers": `{"additionalProperties":{"properties":{"name":{"type":["string","number","boolean"]}},"required":["name"],"type":"object"},"type":["object","null"]}`,
		"timeout": `{"anyOf":[{"minimum":0,"type":"number"},{"description":"a duration: 30s, 5m, 12h, 7d, 1y","type":"string"}]}`,
		"any":     `{}`,
		"self":    `{"type":"object"}`,
	}
	for k, w := range want {
		b, _ := json.Marshal(props[k])
		if string(b) != w {
			t.Errorf("%s: %s, want %s", k, b, w)
		}
	}
	for _, k := range []string{"Skip", "-"} {
		if _, ok := props[k]; ok {
			t.Errorf("%s is in the schema", k)
		}
	}
	if len(props) != len(want)+1 { // + token
		t.Errorf("%d properties, want %d", len(props), len(want)+1)
	}
}

type schemaTagged struct {
	Mode    string  `json:"mode" enum:"|fast|slow" default:"\"fast\"" doc:"how fast"`
	Proto   string  `json:"proto" enum:"v1|v-2" enumcase:"fold"`
	Limit   *uint32 `json:"limit" minimum:"1" maximum:"10"`
	Small   int8    `json:"small"`
	Counter uint16  `json:"counter"`
}

// TestSchemaTags: doc, default, enum (with "" and case folding), minimum and maximum tags,
// and the exact bounds of integers of 32 bits or fewer.
func TestSchemaTags(t *testing.T) {
	props := Schema(schemaTagged{})["properties"].(map[string]any)
	want := map[string]string{
		"mode":    `{"default":"fast","description":"how fast","enum":["","fast","slow"],"type":"string"}`,
		"proto":   `{"examples":["v1","v-2"],"pattern":"^(?:[vV]1|[vV]\\x2d2)$","type":"string"}`,
		"limit":   `{"maximum":10,"minimum":1,"type":"integer"}`,
		"small":   `{"maximum":127,"minimum":-128,"type":"integer"}`,
		"counter": `{"maximum":65535,"minimum":0,"type":"integer"}`,
	}
	for k, w := range want {
		b, _ := json.Marshal(props[k])
		if string(b) != w {
			t.Errorf("%s: %s, want %s", k, b, w)
		}
	}
}

// TestAnnotatePropertiesRefusesUnknownNames: a doc for a property the schema lacks is a
// programming error.
func TestAnnotatePropertiesRefusesUnknownNames(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("no panic for a missing property")
		}
	}()
	AnnotateProperties(Schema(schemaInner{}), map[string]FieldDoc{"nmae": {Description: "x"}})
}
