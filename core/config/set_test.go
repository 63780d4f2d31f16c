package config

import (
	"reflect"
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
