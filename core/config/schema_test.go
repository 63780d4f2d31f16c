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
		"on":      `{"type":["boolean","null"]}`,
		"tags":    `{"items":{"type":["string","number","boolean"]},"type":["array","null"]}`,
		"headers": `{"additionalProperties":{"properties":{"name":{"type":["string","number","boolean"]}},"required":["name"],"type":"object"},"type":["object","null"]}`,
		"timeout": `{"anyOf":[{"minimum":0,"type":"number"},{"description":"a duration: 30s, 5m, 12h, 7d, 1y","type":"string"}]}`,
		"any":     `{}`,
		"self":    `{"type":["object","null"]}`,
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
	Level   *string `json:"level" enum:"low|high"`
	Need    *string `json:"need" cfg:"required" enum:"a|b"`
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
		"limit":   `{"maximum":10,"minimum":1,"type":["integer","null"]}`,
		"small":   `{"maximum":127,"minimum":-128,"type":"integer"}`,
		"level":   `{"enum":["low","high",null],"type":["string","null"]}`,
		"need":    `{"enum":["a","b"],"type":"string"}`,
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

// TestNullable: null joins a type, a type list or an enumeration; a union is wrapped; an open
// schema stays open.
func TestNullable(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"type":"boolean"}`, `{"type":["boolean","null"]}`},
		{`{"type":["array","null"]}`, `{"type":["array","null"]}`},
		{`{"enum":["a"],"type":"string"}`, `{"enum":["a",null],"type":["string","null"]}`},
		{`{"anyOf":[{"type":"number"}]}`, `{"anyOf":[{"anyOf":[{"type":"number"}]},{"type":"null"}]}`},
		{`{"description":"any"}`, `{"description":"any"}`},
	}
	for _, tt := range tests {
		var s map[string]any
		if err := json.Unmarshal([]byte(tt.in), &s); err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(Nullable(s))
		if string(b) != tt.want {
			t.Errorf("Nullable(%s) = %s, want %s", tt.in, b, tt.want)
		}
	}
}
