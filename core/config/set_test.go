package config

import (
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func TestApplyAssignment(t *testing.T) {
	const full = "global:\n  admin: { bind: \"127.0.0.1:2019\" }\nsites:\n  - port: 8080\n    proxy:\n      /v1.2: { targets: [\"http://a\", \"http://b\"] }\n"
	tests := []struct {
		name, src, set string
		get            func(*Document) any
		want           any
		where          string // the path a diagnostic of the key has
	}{
		{"global key", full, "global.admin.bind=127.0.0.1:9901",
			func(d *Document) any { return d.Global["admin"].(map[string]Node)["bind"] }, "127.0.0.1:9901", "global.admin.bind"},
		{"new global object", full, "global.workers=4",
			func(d *Document) any { return d.Global["workers"] }, 4, "global.workers"},
		{"site port", full, "sites[0].port=8081",
			func(d *Document) any { return d.Sites[0]["port"] }, 8081, "sites[0].port"},
		{"quoted string", full, "sites[0].port='8081'",
			func(d *Document) any { return d.Sites[0]["port"] }, "8081", "sites[0].port"},
		{"dotted key and index", full, `sites[0].proxy["/v1.2"].targets[1]=http://c`,
			func(d *Document) any {
				return d.Sites[0]["proxy"].(map[string]Node)["/v1.2"].(map[string]Node)["targets"]
			}, []Node{"http://a", "http://c"}, "sites[0].proxy./v1.2.targets[1]"},
		{"append to an array", full, `sites[0].proxy["/v1.2"].targets[2]=http://c`,
			func(d *Document) any {
				return d.Sites[0]["proxy"].(map[string]Node)["/v1.2"].(map[string]Node)["targets"]
			}, []Node{"http://a", "http://b", "http://c"}, "sites[0].proxy./v1.2.targets[2]"},
		{"flow value", full, "sites[0].headers={X-A: b}",
			func(d *Document) any { return d.Sites[0]["headers"] }, map[string]Node{"X-A": "b"}, "sites[0].headers"},
		{"null", full, "sites[0].proxy=",
			func(d *Document) any { return d.Sites[0]["proxy"] }, nil, "sites[0].proxy"},
		{"single shape", "port: 80\n", "sites[0].port=81",
			func(d *Document) any { return d.Sites[0]["port"] }, 81, "port"},
		{"new site", "port: 80\n", "sites[1].port=81",
			func(d *Document) any { return len(d.Sites) }, 2, "sites[1].port"},
		{"global on a bare list", "- port: 80\n", "global.admin.bind=127.0.0.1:1",
			func(d *Document) any { return d.Global["admin"].(map[string]Node)["bind"] }, "127.0.0.1:1", "global.admin.bind"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := Parse([]byte(tt.src), FormatYAML, nil)
			if err != nil {
				t.Fatal(err)
			}
			a, err := ParseAssignment(tt.set, "--set")
			if err != nil {
				t.Fatal(err)
			}
			if err := doc.Apply(a); err != nil {
				t.Fatal(err)
			}
			if got := tt.get(doc); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %#v, want %#v", got, tt.want)
			}
			var d Diagnostics
			d.TrackDocument(doc)
			d.Errorf(tt.where, "bad")
			if got := d.Errors()[0].String(); got != "--set: error at "+tt.where+": bad" {
				t.Fatalf("diagnostic %q does not name --set", got)
			}
		})
	}
}

func TestAssignmentErrors(t *testing.T) {
	const full = "sites:\n  - port: 8080\n    proxy: http://a\n"
	tests := []struct{ set, want string }{
		{"port=1", `starts with "global" or "sites[N]"`},
		{"sites.port=1", `starts with "global" or "sites[N]"`},
		{"global=1", "global is followed by a key"},
		{"global.admin", "want PATH=VALUE"},
		{"sites[x].port=1", "is not an index"},
		{"sites[-1].port=1", "is not an index"},
		{"sites[5].port=1", "there is no site 5"},
		{"sites[0].proxy.x=1", "sites[0].proxy is a string"},
		{"sites[0][1]=1", "is an object: write .key"},
		{"sites[0].a..b=1", "an empty key"},
		{`sites[0]["a=1`, "closing quote"},
		{"sites[0].port=[", "the value is not YAML"},
		{"sites[0]=3", "a site is an object"},
		{"sites[0].x[0]=1", "does not exist, so it has no element [0]"},
	}
	for _, tt := range tests {
		doc, err := Parse([]byte(full), FormatYAML, nil)
		if err != nil {
			t.Fatal(err)
		}
		a, err := ParseAssignment(tt.set, "--set")
		if err == nil {
			err = doc.Apply(a)
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: error %v, want %q", tt.set, err, tt.want)
		}
	}
}

func TestEnvAssignmentsAreSortedAndNeverPrinted(t *testing.T) {
	as, err := EnvAssignments([]string{"CONDUIT_SET_B=sites[0].port=9", "HOME=/x", "CONDUIT_SET_A=global.admin.token=s3cr3t-value", "CONDUIT_SETTLE=global.x=1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 2 || as[0].Source != "CONDUIT_SET_A" || as[1].Source != "CONDUIT_SET_B" {
		t.Fatalf("assignments %+v", as)
	}
	doc, _ := Parse([]byte("port: 1\n"), FormatYAML, nil)
	for _, a := range as {
		if err := doc.Apply(a); err != nil {
			t.Fatal(err)
		}
	}
	var d Diagnostics
	d.TrackDocument(doc)
	d.Errorf("global.admin.token", "bad value %q", "s3cr3t-value")
	if msg := d.Errors()[0].String(); strings.Contains(msg, "s3cr3t") || !strings.HasPrefix(msg, "CONDUIT_SET_A: ") {
		t.Fatalf("message %q", msg)
	}
}

func FuzzAssignment(f *testing.F) {
	for _, s := range []string{"global.admin.bind=127.0.0.1:9901", "sites[0].port=8081", `sites[0].proxy["/v1.2"].targets[1]=http://c`, "sites[1]={port: 1}", `global["a\"b"]=x`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAssignment(s, "--set")
		if err != nil {
			return
		}
		doc, err := Parse([]byte("sites:\n  - port: 8080\n    proxy: { /a: { targets: [http://x] } }\n"), FormatYAML, nil)
		if err != nil {
			t.Fatal(err)
		}
		_ = doc.Apply(a)
	})
}

// TestUnset: --unset removes an object's key, at any depth and in either shape; a key that
// is not there is an error that names the path, as is a path that ends with an index.
func TestUnset(t *testing.T) {
	const full = "global:\n  admin: { bind: \"127.0.0.1:2019\" }\n  otlp: { endpoint: \"http://c:4317\" }\nsites:\n  - port: 8080\n    proxy:\n      /v1.2: { targets: [\"http://a\"], retry: { attempts: 2 } }\n    routes:\n      - { match: { path: /a }, static: ., proxy: \"http://b\" }\n"
	tests := []struct {
		name, src, path string
		gone            func(*Document) bool // reports the key is gone
		err             string               // "" when the removal succeeds
	}{
		{"global key", full, "global.otlp", func(d *Document) bool { _, ok := d.Global["otlp"]; return !ok }, ""},
		{"nested global key", full, "global.admin.bind", func(d *Document) bool { return len(d.Global["admin"].(map[string]Node)) == 0 }, ""},
		{"quoted key", full, `sites[0].proxy["/v1.2"].retry`, func(d *Document) bool {
			_, ok := d.Sites[0]["proxy"].(map[string]Node)["/v1.2"].(map[string]Node)["retry"]
			return !ok
		}, ""},
		{"key in an array element", full, "sites[0].routes[0].static", func(d *Document) bool {
			_, ok := d.Sites[0]["routes"].([]Node)[0].(map[string]Node)["static"]
			return !ok
		}, ""},
		{"single shape", "port: 80\nstatic: .\n", "sites[0].static", func(d *Document) bool { _, ok := d.Sites[0]["static"]; return !ok }, ""},
		{"missing key", full, "global.admin.token", nil, `global.admin has no key "token": nothing to unset`},
		{"missing global", "port: 80\n", "global.otlp", nil, `global has no key "otlp"`},
		{"missing parent", full, "sites[0].rateLimit.limit", nil, `sites[0] has no key "rateLimit"`},
		{"missing top-level key of a single site", "port: 80\n", "sites[0].proxy", nil, `the site has no key "proxy"`},
		{"no such site", full, "sites[3].port", nil, "there is no site 3"},
		{"past an array", full, "sites[0].routes[4].static", nil, "has 1 elements: there is no [4]"},
		{"through a scalar", full, "sites[0].port.x", nil, "sites[0].port is a number, not an object or array"},
		{"index on an object", full, "sites[0].proxy[0].x", nil, "is an object: write .key"},
		{"ends with an index", full, "sites[0].routes[0]", nil, "ends with a key, not an index"},
		{"a whole site", full, "sites[0]", nil, "ends with a key, not an index"},
		{"with a value", full, "global.otlp=1", nil, "want PATH alone"},
		{"bad start", full, "otlp", nil, `starts with "global" or "sites[N]"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := Parse([]byte(tt.src), FormatYAML, nil)
			if err != nil {
				t.Fatal(err)
			}
			a, err := ParseUnset(tt.path, "--unset")
			if err == nil {
				err = doc.Apply(a)
			}
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.HasPrefix(err.Error(), "--unset ") {
					t.Fatalf("error %v, want one with %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.gone(doc) {
				t.Fatalf("%s is still there", tt.path)
			}
		})
	}
}

// TestUnsetThenSetAndNull: overrides apply in order, and PATH= keeps the key with null.
func TestUnsetThenSetAndNull(t *testing.T) {
	doc, err := Parse([]byte("port: 80\nrateLimit: { windowSecs: 1, limit: 5, burst: 2 }\n"), FormatYAML, nil)
	if err != nil {
		t.Fatal(err)
	}
	un, _ := ParseUnset("sites[0].rateLimit", "--unset")
	set, _ := ParseAssignment("sites[0].rateLimit.limit=9", "--set")
	null, _ := ParseAssignment("sites[0].static=", "--set")
	for _, a := range []Assignment{un, set, null} {
		if err := doc.Apply(a); err != nil {
			t.Fatal(err)
		}
	}
	if got := doc.Sites[0]["rateLimit"]; !reflect.DeepEqual(got, map[string]Node{"limit": 9}) {
		t.Fatalf("rateLimit %#v", got)
	}
	if v, ok := doc.Sites[0]["static"]; !ok || v != nil {
		t.Fatalf("static = %#v, %v; want a null value", v, ok)
	}
}

func TestEnvUnsetsFollowSets(t *testing.T) {
	as, err := EnvAssignments([]string{"CONDUIT_UNSET_A=global.otlp", "CONDUIT_SET_Z=global.otlp.endpoint=http://c", "CONDUIT_UNSET=global.x", "CONDUIT_UNSETTLE=global.y"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range as {
		got = append(got, a.Source+":"+a.Path+":"+strconv.FormatBool(a.Unset))
	}
	want := []string{"CONDUIT_SET_Z:global.otlp.endpoint:false", "CONDUIT_UNSET:global.x:true", "CONDUIT_UNSET_A:global.otlp:true"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if _, err := EnvAssignments([]string{"CONDUIT_UNSET_B=global.a=1"}); err == nil || !strings.Contains(err.Error(), "CONDUIT_UNSET_B") {
		t.Fatalf("error %v does not name the variable", err)
	}
}

func FuzzUnset(f *testing.F) {
	for _, s := range []string{"global.admin", "sites[0].proxy", `sites[0].proxy["/a"].targets`, "sites[0].routes[0].static", `global["a\"b"]`, "sites[0]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseUnset(s, "--unset")
		if err != nil {
			return
		}
		if !a.Unset || a.Path != s {
			t.Fatalf("ParseUnset(%q) = %+v", s, a)
		}
		doc, err := Parse([]byte("global: { admin: { bind: x } }\nsites:\n  - port: 8080\n    proxy: { /a: { targets: [http://x] } }\n    routes: [ { match: {}, static: . } ]\n"), FormatYAML, nil)
		if err != nil {
			t.Fatal(err)
		}
		_ = doc.Apply(a)
	})
}
