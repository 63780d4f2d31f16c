package main

import (
	"context"
	"log/slog"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/conduitproxy/conduit/core/cli"
	"github.com/conduitproxy/conduit/core/config"
	"github.com/conduitproxy/conduit/core/server"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// The class of errors the schema and `conduit validate` must agree on is the shape of a
// value: its JSON type, a key the module refuses (where unknown keys are errors, not
// Decode's warnings), a missing required key, a string outside an enumeration, a type
// middleware[] does not know. shapeMessages recognise those errors by their wording (the
// wording of config.Decode, config.DecodeToggle and the modules' unions and enumerations).
// Everything else is semantic and not compared: ranges (which the schema states where it
// can, but a 64-bit bound cannot be exact), formats (host:port, URL paths, media types,
// globs), files that must exist, ports and hosts in conflict, a combination of keys.
var shapeMessages = []*regexp.Regexp{
	// Decode's type errors, and the unions' ("must be an object or a boolean, got 3").
	regexp.MustCompile(`^must be (a string|true or false|an integer|a non-negative integer|a number|an array|an object|a boolean)\b`),
	// DecodeToggle's "must be true, false or {…}, got …".
	regexp.MustCompile(`^must be true, false or `),
	// A union that refuses the value's kind: what it got is not a string (a string is
	// quoted, and refused for its format, not its kind). Ranges end in numbers too; they
	// are excluded by rangeMessage.
	regexp.MustCompile(`, got (an object|an array|null|true|false|-?[0-9][0-9.e+-]*)$`),
	// An enumeration of words: `must be v1 or v2, got "v3"`, `must be "request" or "response", got "x"`.
	regexp.MustCompile(`^must be ("[\w-]*"|[\w-]+)(, ("[\w-]*"|[\w-]+))* or ("[\w-]*"|[\w-]+), got "`),
	regexp.MustCompile(`^is required\b`),
	regexp.MustCompile(`^unknown key `),
	regexp.MustCompile(`^unknown middleware type `),
}

// rangeMessage is a number out of range: semantic, not compared.
var rangeMessage = regexp.MustCompile(`between|^must be (at most|at least|≥|>|<)`)

// isShapeMessage reports whether an error message is in the compared class.
func isShapeMessage(msg string) bool {
	if rangeMessage.MatchString(msg) {
		return false
	}
	for _, re := range shapeMessages {
		if re.MatchString(msg) {
			return true
		}
	}
	return false
}

// parseErrorLine is one line of a Parse error: "error at PATH: MESSAGE".
var parseErrorLine = regexp.MustCompile(`^error at ([^:]*): (.*)$`)

// validateDiagnostics runs the pipeline of `conduit validate` (config.Parse, server.Build)
// on a JSON document, without the environment ($NAME stays as written). A document Parse
// refuses for its top-level shape (sites that is not a list) gets Parse's errors as
// diagnostics; an error of another form (JSON syntax) is returned.
func validateDiagnostics(t testing.TB, doc string) (*config.Diagnostics, error) {
	parsed, err := config.Parse([]byte(doc), config.FormatJSON, nil)
	if err != nil {
		d := &config.Diagnostics{}
		for _, line := range strings.Split(err.Error(), "\n") {
			m := parseErrorLine.FindStringSubmatch(line)
			if m == nil {
				return nil, err
			}
			d.Errorf(m[1], "%s", m[2])
		}
		return d, nil
	}
	parsed.Path = filepath.Join(t.TempDir(), "conduit.json")
	g, d := server.Build(context.Background(), parsed, server.BuildOptions{Logger: slog.New(slog.DiscardHandler)})
	if g != nil {
		g.Stop(context.Background())
	}
	return d, nil
}

// typedKeys returns the site and global keys whose schema refuses some value. A shape error
// under any other key (one whose schema accepts any value, or a key the schema does not
// name, which validate warns about or, for a misspelt guard, refuses) cannot be in the
// schema, so it is not compared.
func typedKeys() (site, global map[string]bool) {
	s := cli.BuildSchema()
	defs := s["$defs"].(map[string]any)
	collect := func(def string) map[string]bool {
		out := map[string]bool{}
		props := defs[def].(map[string]any)["properties"].(map[string]any)
		for k, v := range props {
			if !isOpenSchema(v.(map[string]any)) {
				out[k] = true
			}
		}
		return out
	}
	return collect("site"), collect("global")
}

// constraining are the keywords that make a schema refuse some value.
var constraining = []string{"type", "anyOf", "oneOf", "allOf", "$ref", "enum", "const", "not", "if"}

// isOpenSchema reports whether a schema refuses nothing.
func isOpenSchema(s map[string]any) bool {
	for _, k := range constraining {
		if _, ok := s[k]; ok {
			return false
		}
	}
	return true
}

var sitePathRe = regexp.MustCompile(`^sites\[\d+\]\.?`)

// underTypedKey reports whether a diagnostic's path lies under a key the schema types, or is
// the document's own shape ("", "sites", "global", "sites[2]").
func underTypedKey(path string, site, global map[string]bool) bool {
	switch {
	case path == "" || path == "sites" || path == "global":
		return true
	case strings.HasPrefix(path, "global."):
		return global[firstKey(strings.TrimPrefix(path, "global."))]
	}
	rest := sitePathRe.ReplaceAllString(path, "")
	return rest == "" || site[firstKey(rest)]
}

func firstKey(p string) string {
	if i := strings.IndexAny(p, ".["); i >= 0 {
		return p[:i]
	}
	return p
}

// shapeErrors returns validate's errors in the compared class at paths the schema types.
func shapeErrors(d *config.Diagnostics, site, global map[string]bool) []config.Diagnostic {
	var out []config.Diagnostic
	for _, e := range d.Errors() {
		if isShapeMessage(e.Message) && underTypedKey(e.Path, site, global) {
			out = append(out, e)
		}
	}
	return out
}

// envReference is a whole-value $NAME: substitution may turn it into a number or a boolean
// before decoding, so the schema (which sees the file as written) cannot judge its shape.
var envReference = regexp.MustCompile(`"\$[A-Za-z_][A-Za-z0-9_]*"`)

// badShapes are documents with one shape error each, for every module with typed keys and
// the core's keys: TestSchemaRefusesShapeErrors checks that validate reports a shape error
// for each and that the schema refuses it.
var badShapes = []struct{ name, doc string }{
	// core
	{"port string", `{"port": "x"}`},
	{"host list", `{"port": 8080, "host": ["a.example", "b.example"]}`},
	{"tls boolean", `{"port": 8443, "tls": true}`},
	{"tls versions string", `{"port": 8443, "tls": {"cert": "c", "key": "k", "versions": "TLSv1.3"}}`},
	{"http2 number", `{"port": 8080, "http2": 2}`},
	{"http2 h2c string", `{"port": 8080, "http2": {"h2c": "yes"}}`},
	{"routes object", `{"port": 8080, "routes": {"match": {}}}`},
	{"route without match", `{"port": 8080, "routes": [{"static": "."}]}`},
	{"route match path list", `{"port": 8080, "routes": [{"match": {"path": ["/a"]}, "static": "."}]}`},
	{"middleware object", `{"port": 8080, "middleware": {"type": "script"}}`},
	{"middleware entry string", `{"port": 8080, "middleware": ["script"]}`},
	{"middleware without type", `{"port": 8080, "middleware": [{"path": "x.go"}]}`},
	{"middleware unknown type", `{"port": 8080, "middleware": [{"type": "lua", "path": "x.lua"}]}`},
	{"global workers string", `{"global": {"workers": "many"}, "sites": [{"port": 8080}]}`},
	{"sites object", `{"global": {}, "sites": {"port": 8080}}`},
	// timing
	{"responseTime string", `{"port": 8080, "responseTime": "yes"}`},
	{"serverTiming number", `{"port": 8080, "serverTiming": 1}`},
	// tcp
	{"tcp boolean", `{"port": 9000, "tcp": true}`},
	{"tcp without targets", `{"port": 9000, "tcp": {"strategy": "random"}}`},
	{"tcp targets string", `{"port": 9000, "tcp": {"targets": "127.0.0.1:6379"}}`},
	{"tcp strategy enum", `{"port": 9000, "tcp": {"targets": ["127.0.0.1:6379"], "strategy": "fastest"}}`},
	{"tcp proxyProtocol enum", `{"port": 9000, "tcp": {"targets": ["127.0.0.1:6379"], "proxyProtocol": "v3"}}`},
	{"tcp accessLog string", `{"port": 9000, "tcp": {"targets": ["127.0.0.1:6379"], "accessLog": "no"}}`},
	{"tcp maxConnections negative", `{"port": 9000, "tcp": {"targets": ["127.0.0.1:6379"], "maxConnections": -1}}`},
	{"tcp idleTimeoutMs fraction", `{"port": 9000, "tcp": {"targets": ["127.0.0.1:6379"], "idleTimeoutMs": 1.5}}`},
	// upload
	{"upload string", `{"port": 8080, "upload": "/upload"}`},
	{"upload without dir", `{"port": 8080, "upload": {"path": "/upload"}}`},
	{"upload maxFiles string", `{"port": 8080, "upload": {"path": "/upload", "dir": "/tmp/u", "maxFiles": "ten"}}`},
	{"upload allowedMimeTypes string", `{"port": 8080, "upload": {"path": "/upload", "dir": "/tmp/u", "allowedMimeTypes": "image/png"}}`},
	// extAuthz
	{"extAuthz string", `{"port": 8080, "extAuthz": "127.0.0.1:9001"}`},
	{"extAuthz without grpc", `{"port": 8080, "extAuthz": {"timeoutMs": 100}}`},
	{"extAuthz failureModeAllow string", `{"port": 8080, "extAuthz": {"grpc": "127.0.0.1:9001", "failureModeAllow": "yes"}}`},
	{"extAuthz withRequestBody without maxBytes", `{"port": 8080, "extAuthz": {"grpc": "127.0.0.1:9001", "withRequestBody": {"allowPartial": true}}}`},
	{"extAuthz contextExtensions list", `{"port": 8080, "extAuthz": {"grpc": "127.0.0.1:9001", "contextExtensions": ["a"]}}`},
	{"extAuthz metadata namespace string", `{"port": 8080, "extAuthz": {"grpc": "127.0.0.1:9001", "metadata": {"ns": "x"}}}`},
	{"extAuthz tls boolean", `{"port": 8080, "extAuthz": {"grpc": "127.0.0.1:9001", "tls": true}}`},
	{"extAuthz decisionCache boolean", `{"port": 8080, "extAuthz": {"grpc": "127.0.0.1:9001", "decisionCache": true}}`},
	// extProc
	{"extProc list", `{"port": 8080, "extProc": ["127.0.0.1:9002"]}`},
	{"extProc without grpc", `{"port": 8080, "extProc": {}}`},
	{"extProc mode enum", `{"port": 8080, "extProc": {"grpc": "127.0.0.1:9002", "processingMode": {"requestHeaderMode": "BUFFERED"}}}`},
	{"extProc skipPaths string", `{"port": 8080, "extProc": {"grpc": "127.0.0.1:9002", "skipPaths": "/health"}}`},
	// http3
	{"http3 string", `{"port": 8443, "http3": "on"}`},
	{"http3 maxStreams string", `{"port": 8443, "http3": {"maxStreams": "many"}}`},
	{"http3 advertise number", `{"port": 8443, "http3": {"advertise": 1}}`},
	{"global http3 list", `{"global": {"http3": []}, "sites": [{"port": 8443}]}`},
	// wasm
	{"global wasm boolean", `{"global": {"wasm": true}, "sites": [{"port": 8080}]}`},
	{"global wasm diskCache string", `{"global": {"wasm": {"diskCache": "off"}}, "sites": [{"port": 8080}]}`},
	{"wasm entry without path", `{"port": 8080, "middleware": [{"type": "wasm"}]}`},
	{"wasm entry phase enum", `{"port": 8080, "middleware": [{"type": "wasm", "path": "g.wasm", "phase": "both"}]}`},
	{"wasm entry abi enum", `{"port": 8080, "middleware": [{"type": "wasm", "path": "g.wasm", "abi": "proxy-wasm"}]}`},
	{"wasm entry onError enum", `{"port": 8080, "middleware": [{"type": "wasm", "path": "g.wasm", "onError": "continue"}]}`},
	{"wasm entry instances enum", `{"port": 8080, "middleware": [{"type": "wasm", "path": "g.wasm", "instances": "pooled"}]}`},
	{"wasm entry env list", `{"port": 8080, "middleware": [{"type": "wasm", "path": "g.wasm", "env": ["A=1"]}]}`},
	{"wasm entry timeoutMs string", `{"port": 8080, "middleware": [{"type": "wasm", "path": "g.wasm", "timeoutMs": "1s"}]}`},
	// fallback and redirects
	{"fallback string", `{"port": 8080, "fallback": "index.html"}`},
	{"fallback status string", `{"port": 8080, "fallback": {"status": "404"}}`},
	{"fallback byAccept rule string", `{"port": 8080, "fallback": {"byAccept": {"html": "index.html"}}}`},
	{"redirects object", `{"port": 8080, "redirects": {"from": "/a", "to": "/b"}}`},
	{"redirect without to", `{"port": 8080, "redirects": [{"from": "/a"}]}`},
	{"redirect status string", `{"port": 8080, "redirects": [{"from": "/a", "to": "/b", "status": "301"}]}`},
	// script and traefik
	{"script entry without path", `{"port": 8080, "middleware": [{"type": "script"}]}`},
	{"script entry unknown key", `{"port": 8080, "middleware": [{"type": "script", "path": "s.go", "onerror": "deny"}]}`},
	{"script entry phase enum", `{"port": 8080, "middleware": [{"type": "script", "path": "s.go", "phase": "both"}]}`},
	{"script entry onError enum", `{"port": 8080, "middleware": [{"type": "script", "path": "s.go", "onError": "allow"}]}`},
	{"script entry unrestricted string", `{"port": 8080, "middleware": [{"type": "script", "path": "s.go", "unrestricted": "yes"}]}`},
	{"traefik entry unknown key", `{"port": 8080, "middleware": [{"type": "traefik", "path": "p", "plugin": "x"}]}`},
	{"traefik entry timeoutMs string", `{"port": 8080, "middleware": [{"type": "traefik", "path": "p", "timeoutMs": "1s"}]}`},
	// proxy
	{"proxy number", `{"port": 8080, "proxy": 3}`},
	{"proxy null", `{"port": 8080, "proxy": null}`},
	{"proxy prefix target number", `{"port": 8080, "proxy": {"/api": 5}}`},
	{"proxy target object without url", `{"port": 8080, "proxy": {"/api": [{"weight": 2}]}}`},
	{"proxy route targets string", `{"port": 8080, "proxy": {"/api": {"targets": "http://127.0.0.1:9"}}}`},
	{"proxy route object targets string", `{"port": 8080, "proxy": {"targets": "http://127.0.0.1:9"}}`},
	{"proxy route retry without attempts", `{"port": 8080, "proxy": {"/": {"targets": ["http://127.0.0.1:9"], "retry": {"conditions": ["5xx"]}}}}`},
	{"proxy route retry attempts null", `{"port": 8080, "proxy": {"/": {"targets": ["http://127.0.0.1:9"], "retry": {"attempts": null, "conditions": ["5xx"]}}}}`},
	{"proxy route websocket string", `{"port": 8080, "proxy": {"/": {"targets": ["http://127.0.0.1:9"], "websocket": "yes"}}}`},
	{"proxy route healthCheck list", `{"port": 8080, "proxy": {"/": {"targets": ["http://127.0.0.1:9"], "healthCheck": []}}}`},
	{"proxy route groups without name", `{"port": 8080, "proxy": {"/": {"groups": [{"targets": ["http://127.0.0.1:9"]}]}}}`},
	{"proxy route sticky without cookie", `{"port": 8080, "proxy": {"/": {"targets": ["http://127.0.0.1:9"], "sticky": {"strict": true}}}}`},
	{"routes proxy number", `{"port": 8080, "routes": [{"match": {"path": "/a"}, "proxy": 5}]}`},
	{"routes proxy route timeout string", `{"port": 8080, "routes": [{"match": {"path": "/a"}, "proxy": {"targets": ["http://127.0.0.1:9"], "timeout": "5s"}}]}`},
	{"requestTransform list", `{"port": 8080, "requestTransform": ["x"]}`},
	{"responseTransform removeHeaders string", `{"port": 8080, "responseTransform": {"removeHeaders": "Server"}}`},
	{"maskErrors string", `{"port": 8080, "maskErrors": "yes"}`},
	{"allowDuplicateChunked number", `{"port": 8080, "allowDuplicateChunked": 1}`},
	{"outlierDetection boolean", `{"port": 8080, "outlierDetection": true}`},
	{"outlierDetection consecutive5xx string", `{"port": 8080, "outlierDetection": {"consecutive5xx": "five"}}`},
	// static
	{"static number", `{"port": 8080, "static": 3}`},
	{"static null", `{"port": 8080, "static": null}`},
	{"static list of numbers", `{"port": 8080, "static": [1]}`},
	{"static prefix number", `{"port": 8080, "static": {"/docs": 1}}`},
	{"routes static number", `{"port": 8080, "routes": [{"match": {"path": "/a"}, "static": 3}]}`},
	// rateLimit
	{"rateLimit string", `{"port": 8080, "rateLimit": "10/s"}`},
	{"rateLimit without limit", `{"port": 8080, "rateLimit": {"windowSecs": 1}}`},
	{"rateLimit windowSecs null", `{"port": 8080, "rateLimit": {"windowSecs": null, "limit": 5}}`},
	{"rateLimit onStoreError enum", `{"port": 8080, "rateLimit": {"windowSecs": 1, "limit": 5, "onStoreError": "retry"}}`},
	{"route rateLimit without windowSecs", `{"port": 8080, "proxy": {"/": {"targets": ["http://127.0.0.1:9"], "rateLimit": {"limit": 5}}}}`},
	// cache
	{"route cache boolean", `{"port": 8080, "proxy": {"/": {"targets": ["http://127.0.0.1:9"], "cache": true}}}`},
	{"route cache without store", `{"port": 8080, "proxy": {"/": {"targets": ["http://127.0.0.1:9"], "cache": {"ttlSecs": 60}}}}`},
	{"route cache methods string", `{"port": 8080, "routes": [{"match": {"path": "/a"}, "proxy": {"targets": ["http://127.0.0.1:9"], "cache": {"store": "memory", "methods": "GET"}}}]}`},
	// consumers
	{"consumers list", `{"port": 8080, "consumers": [{"username": "a"}]}`},
	{"consumer without username", `{"port": 8080, "consumers": {"consumers": [{"apiKey": "k-0123456789abcdef"}]}}`},
	{"consumer rateLimit string", `{"port": 8080, "consumers": {"consumers": [{"username": "a", "apiKey": "k-0123456789abcdef", "rateLimit": "5"}]}}`},
	{"jwtAuth audience number", `{"port": 8080, "jwtAuth": {"secret": "s", "audience": 5}}`},
	{"jwtAuth audience list of objects", `{"port": 8080, "jwtAuth": {"secret": "s", "audience": [{"a": 1}]}}`},
	{"consumers sharedJwt string", `{"port": 8080, "consumers": {"sharedJwt": "s", "consumers": [{"username": "a"}]}}`},
	// otlp
	{"global otlp string", `{"global": {"otlp": "http://127.0.0.1:4317"}, "sites": [{"port": 8080}]}`},
	{"global otlp without endpoint", `{"global": {"otlp": {"serviceName": "x"}}, "sites": [{"port": 8080}]}`},
	{"global otlp sampleRate string", `{"global": {"otlp": {"endpoint": "http://127.0.0.1:4317", "sampleRate": "all"}}, "sites": [{"port": 8080}]}`},
	// tls.acme
	{"acme string", `{"host": "a.example", "port": 8443, "tls": {"acme": "me@a.example"}}`},
	{"acme without email", `{"host": "a.example", "port": 8443, "tls": {"acme": {"storage": "/tmp/acme"}}}`},
	{"acme challenge enum", `{"host": "a.example", "port": 8443, "tls": {"acme": {"email": "me@a.example", "challenge": "http-02"}}}`},
}

// TestSchemaRefusesShapeErrors: for every document of badShapes, validate reports an error
// of the compared class, and the schema (through santhosh-tekuri/jsonschema) refuses it.
func TestSchemaRefusesShapeErrors(t *testing.T) {
	s := compileSchema(t)
	site, global := typedKeys()
	for _, c := range badShapes {
		t.Run(c.name, func(t *testing.T) {
			v, err := jsonschema.UnmarshalJSON(strings.NewReader(c.doc))
			if err != nil {
				t.Fatal(err)
			}
			d, err := validateDiagnostics(t, c.doc)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if len(shapeErrors(d, site, global)) == 0 {
				t.Errorf("validate reports no shape error for %s: %v", c.doc, d.Errors())
			}
			if s.Validate(v) == nil {
				t.Errorf("the schema accepts %s; validate says %v", c.doc, d.Errors())
			}
		})
	}
}

// goodShapes are documents whose every value has the right shape (some name files that do
// not exist, which validate reports; that is not a shape error): the schema accepts them and
// validate reports no shape error.
var goodShapes = []string{
	`{"port": 8080, "jwtAuth": {"secret": "s", "audience": "api"}}`,
	`{"port": 8080, "jwtAuth": {"secret": "s", "audience": ["api", "web", 5]}}`,
	`{"port": 9000, "tcp": {"targets": ["127.0.0.1:6379"], "strategy": "Least-Conn", "proxyProtocol": "V2", "connectTimeoutMs": 100, "maxFails": 0, "accessLog": false}}`,
	`{"port": 8080, "upload": {"path": "/upload", "dir": "/tmp/conduit-upload-schema", "maxFiles": 3, "allowedMimeTypes": ["image/*"], "fieldName": "f"}}`,
	`{"port": 8080, "extAuthz": {"grpc": "dns:///authz:9001", "timeoutMs": 50, "statusOnError": 503, "withRequestBody": {"maxBytes": 1024}, "contextExtensions": {"a": "b"}, "metadata": {"ns": {"k": [1, "x"]}}, "decisionCache": {"ttlMs": 1000}, "skipPaths": ["/health"]}}`,
	`{"port": 8080, "extProc": {"grpc": "127.0.0.1:9002", "processingMode": {"requestHeaderMode": "SKIP", "responseHeaderMode": "send"}}}`,
	`{"port": 8443, "http3": {"enabled": false, "maxStreams": 10, "idleTimeoutSecs": 60, "advertise": false}}`,
	`{"global": {"http3": true, "wasm": {"cacheDir": "/tmp/c", "diskCache": false}}, "sites": [{"port": 8080, "http3": false}]}`,
	`{"port": 8080, "http2": false, "routes": [{"match": {"path": "/a/**", "method": ["GET"], "headers": {"x": "y"}}, "static": "."}]}`,
	`{"port": 8080, "middleware": [{"type": "wasm", "path": "g.wasm", "phase": "response", "abi": "http-wasm", "onError": "deny", "instances": "fresh", "env": {"A": "1"}, "config": {"any": [1]}}]}`,
	`{"port": 8080, "middleware": [{"type": "script", "path": "s.go", "phase": "response", "timeoutMs": 0, "config": 3}, {"type": "traefik", "path": "p", "onError": "deny"}]}`,
	`{"port": 8080, "middleware": [{"type": "headers"}]}`,
	`{"port": 8080, "fallback": null, "redirects": null}`,
	`{"port": 8080, "fallback": {"status": 404, "body": {"error": "not found"}, "headers": {"x": "y"}, "byAccept": {"html": {"file": "index.html"}}}, "redirects": [{"from": "/old/:id", "to": "/new/:id", "status": 308}]}`,
	`{"port": 8080, "proxy": "http://127.0.0.1:9", "maskErrors": true, "allowDuplicateChunked": false, "requestTransform": {"setHeaders": {"X-A": "1"}, "removeHeaders": ["Cookie"]}, "outlierDetection": {"consecutive5xx": 3, "maxEjectionPercent": 50}}`,
	`{"port": 8080, "proxy": ["http://127.0.0.1:9", {"url": "http://127.0.0.1:10", "weight": 2}]}`,
	`{"port": 8080, "proxy": {"targets": ["http://127.0.0.1:9"], "strategy": "p2c"}}`,
	`{"port": 8080, "proxy": {"/api": {"targets": [{"url": "http://127.0.0.1:9", "weight": 3}], "strategy": "weighted-round-robin", "retry": {"attempts": 2, "conditions": ["5xx", "timeout"]}, "timeout": {"connectMs": 100}, "healthCheck": {"path": "/h", "intervalSecs": 5, "unhealthyStatus": [503]}, "cache": {"store": "memory", "ttlSecs": 60}, "rateLimit": {"windowSecs": 1, "limit": 5}, "extAuthz": null, "sticky": {"cookie": "s"}, "priority": 10}, "/b": "http://127.0.0.1:11"}}`,
	`{"port": 8080, "routes": [{"match": {"path": "/a"}, "proxy": {"targets": ["http://127.0.0.1:9"], "cache": null}, "static": 5}, {"match": {"path": "/b"}, "proxy": null, "static": ["."]}, {"match": {"path": "/c"}, "static": {"/": "."}}]}`,
	`{"port": 8080, "static": {"/": ".", "/docs": [".", "/tmp"]}, "rateLimit": {"windowSecs": 1, "limit": 5, "onStoreError": null, "algorithm": "token-bucket"}}`,
	`{"port": 8080, "consumers": {"consumers": [{"username": "a", "apiKey": "k-0123456789abcdef", "rateLimit": {"windowSecs": 1, "limit": 2}}, {"username": "b", "apiKey": "k-fedcba9876543210", "rateLimit": null}]}}`,
	`{"global": {"otlp": {"endpoint": "http://127.0.0.1:4318", "protocol": "HTTP/protobuf", "sampleRate": 0.5}, "providers": {"consul": true}}, "sites": [{"host": "a.example", "port": 8443, "tls": {"acme": {"email": "me@a.example", "challenge": "TLS-ALPN-01"}}}]}`,
	`{"host": "a.example", "port": 8443, "tls": {"cert": "c.pem", "key": "k.pem", "acme": null}}`,
}

// TestSchemaAcceptsGoodShapes: see goodShapes.
func TestSchemaAcceptsGoodShapes(t *testing.T) {
	s := compileSchema(t)
	site, global := typedKeys()
	for _, doc := range goodShapes {
		v, err := jsonschema.UnmarshalJSON(strings.NewReader(doc))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Validate(v); err != nil {
			t.Errorf("the schema refuses %s: %v", doc, err)
		}
		d, err := validateDiagnostics(t, doc)
		if err != nil {
			t.Fatalf("parse: %v", err)
		}
		if se := shapeErrors(d, site, global); len(se) > 0 {
			t.Errorf("validate reports shape errors for %s: %v", doc, se)
		}
	}
}

// TestShapeMessageClass pins which messages are compared.
func TestShapeMessageClass(t *testing.T) {
	for msg, want := range map[string]bool{
		`must be a string, got an object`:                                                       true,
		`must be true or false, got "yes"`:                                                      true,
		`must be an integer, got 1.5`:                                                           true,
		`must be true, false or {digits}, got "x"`:                                              true,
		`must be an object or a boolean, got 2`:                                                 true,
		`must be an array of {type, ...} entries, got "x"`:                                      true,
		`must be round-robin, random or least-conn, got "fastest"`:                              true,
		`must be "request" or "response", got "both"`:                                           true,
		`must be v1 or v2, got "v3"`:                                                            true,
		`is required`:                                                                           true,
		`unknown key "onerror" (did you mean "onError"?); known: type, path`:                    true,
		`unknown middleware type "lua" (known: script, wasm)`:                                   true,
		`must be between 1 and 65535`:                                                           false,
		`must be between 0 and 6, got 9`:                                                        false,
		`must be an error status between 400 and 599, got 700`:                                  false,
		`must be at least 1`:                                                                    false,
		`must be host:port or dns:///host:port, got "http://x"`:                                 false,
		`must be host:port (a port from 1 to 65535, no scheme), got "5"`:                        false,
		`must be an absolute URL path such as /upload (no query, glob or dot segment), got "x"`: false,
		`directory /x does not exist`:                                                           false,
	} {
		if got := isShapeMessage(msg); got != want {
			t.Errorf("isShapeMessage(%q) = %v, want %v", msg, got, want)
		}
	}
}
