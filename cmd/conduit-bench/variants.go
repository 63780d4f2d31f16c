package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/template"
)

// needs are the shared services a row depends on; the harness starts each once per run.
type needs uint8

const (
	needRedis needs = 1 << iota // a redis-server on 127.0.0.1 (RedisURL)
	needAdmin                   // global.admin.bind on AdminAddr
	needTap                     // a `conduit tap --json` client attached to the Admin API
	needAuthz                   // the allow-all authorization service (./cmd/conduit-bench/authz)
)

// conduitVariant is one Conduit configuration measured as its own row, beside the plain
// proxy row, in the same run and with the same method. Adding a configuration is one entry
// in conduitVariants.
type conduitVariant struct {
	Name  string
	Issue int    // the issue that asked for the row (0: the plain proxy path)
	Note  string // one line for -h and the docs
	// Full selects ./cmd/conduit-full (features of the full bundle, e.g. the Redis store)
	// instead of ./cmd/conduit.
	Full bool
	// Alt runs the binary given with -conduit-alt-bin (an A/B of two builds in one run).
	Alt bool
	// Site is a text/template (fields of tmplData) of the site's own keys, as YAML at
	// column 0; the harness adds port, tls and http2 and repeats it on every listener.
	Site  string
	Needs needs
	// Auth is "" or "hs256"/"rs256": the load generator sends a valid bearer token for it.
	Auth string
	// Check runs after the first checked request and proves the feature is active.
	Check func(b *bench, ep endpoint) error
	// H1Only marks a row that relays HTTP/1.1 only (a TCP proxy): it gets no h2c or TLS
	// listener, and the h2c and h2tls modes skip it.
	H1Only bool
}

// conduitVariants is the list of Conduit rows, in -peers order. Keep "conduit" first: it is
// the plain proxy path that issue 2's targets are judged on.
var conduitVariants = []conduitVariant{
	{
		Name: "conduit", Note: "Conduit, plain proxy path (one upstream)",
		Site: `proxy: "http://{{.Upstream}}"`,
	},
	{
		Name: "conduit-rr3", Issue: 4, Note: "three upstreams, strategy: round-robin",
		Site: `proxy:
  /:
    targets: [{{range $i, $u := .Upstreams}}{{if $i}}, {{end}}"http://{{$u}}"{{end}}]
    strategy: round-robin`,
		Check: checkSpread(3),
	},
	{
		Name: "conduit-p2c3", Issue: 4, Note: "three upstreams, strategy: p2c",
		Site: `proxy:
  /:
    targets: [{{range $i, $u := .Upstreams}}{{if $i}}, {{end}}"http://{{$u}}"{{end}}]
    strategy: p2c`,
		Check: checkSpread(2),
	},
	{
		Name: "conduit-jwt-hs256", Issue: 5, Note: "jwtAuth HS256 (secret), valid token on every request",
		Site: `proxy: "http://{{.Upstream}}"
jwtAuth:
  secret: "{{.JWTSecret}}"`,
		Auth: "hs256", Check: checkAuthRequired,
	},
	{
		Name: "conduit-jwt-rs256", Issue: 5, Note: "jwtAuth RS256 via jwksUrl (harness JWKS server), valid token",
		Site: `proxy: "http://{{.Upstream}}"
jwtAuth:
  jwksUrl: "{{.JWKSURL}}"`,
		Auth: "rs256", Check: checkAuthRequired,
	},
	{
		Name: "conduit-rl-mem", Issue: 5, Note: "rateLimit in memory, limit high enough that nothing is refused",
		Site: `proxy: "http://{{.Upstream}}"
rateLimit:
  windowSecs: 1
  limit: 1000000000`,
	},
	{
		Name: "conduit-rl-redis", Issue: 5, Full: true, Needs: needRedis,
		Note: "rateLimit store: redis:// (harness redis-server), nothing refused; conduit-full",
		Site: `proxy: "http://{{.Upstream}}"
rateLimit:
  windowSecs: 1
  limit: 1000000000
  store: "{{.RedisURL}}"`,
		Check: checkRedisUsed,
	},
	{
		Name: "conduit-cache", Issue: 9, Note: "proxy cache, store: memory, ttlSecs: 60: every measured request is a hit",
		Site: `proxy:
  /:
    targets: ["http://{{.CacheUpstream}}"]
    cache: {store: memory, ttlSecs: 60}`,
		Check: checkCacheHit,
	},
	{
		Name: "conduit-forwardauth", Issue: 23, Needs: needAuthz,
		Note: "forwardAuth to the harness's allow-all HTTP service (the conduit-extauthz row's comparison)",
		Site: `proxy: "http://{{.Upstream}}"
forwardAuth:
  url: "http://{{.AuthzHTTP}}/verify"`,
		Check: checkDeniedPath,
	},
	{
		Name: "conduit-extauthz", Issue: 23, Full: true, Needs: needAuthz,
		Note: "extAuthz (Envoy gRPC ext_authz) to the harness's allow-all service; conduit-full",
		Site: `proxy: "http://{{.Upstream}}"
extAuthz:
  grpc: "{{.AuthzGRPC}}"`,
		Check: checkDeniedPath,
	},
	{
		Name: "conduit-extproc", Issue: 23, Full: true, Needs: needAuthz,
		Note: "extProc (Envoy gRPC ext_proc, both header phases) to the harness's processor that changes nothing; conduit-full",
		Site: `proxy: "http://{{.Upstream}}"
extProc:
  grpc: "{{.AuthzGRPC}}"`,
		Check: checkDeniedPath,
	},
	{
		Name: "conduit-tap", Issue: 7, Needs: needAdmin | needTap,
		Note: "Admin API on, `conduit tap --json` attached for the whole run",
		Site: `proxy: "http://{{.Upstream}}"`,
	},
	{
		Name: "conduit-alt", Alt: true,
		Note: "plain proxy path with the -conduit-alt-bin binary (A/B of two builds in one interleaved run)",
		Site: `proxy: "http://{{.Upstream}}"`,
	},
	{
		Name: "conduit-wasm", Issue: 18, Full: true,
		Note: "middleware: a WASM guest of the conduit ABI adding one response header (plugins/wasm/wat/header.wat); conduit-full",
		Site: `proxy: "http://{{.Upstream}}"
middleware:
  - {type: wasm, path: "{{.WasmGuests}}/wat/header.wasm", phase: response}`,
		Check: checkHeader("X-Wasm", "1"),
	},
	{
		Name: "conduit-httpwasm", Issue: 18, Full: true,
		Note: "middleware: an http-wasm guest adding one request header (plugins/wasm/wat/hwheader.wat); conduit-full",
		Site: `proxy: "http://{{.Upstream}}"
middleware:
  - {type: wasm, path: "{{.WasmGuests}}/wat/hwheader.wasm"}`,
	},
	{
		Name: "conduit-script", Issue: 17, Full: true,
		Note: "middleware[]: one Go script (yaegi) that sets one response header; conduit-full",
		Site: `proxy: "http://{{.Upstream}}"
middleware:
  - {type: script, path: "{{.Repo}}/modules/script/testdata/scripts/oneheader.go"}`,
		Check: checkHeader("X-Script", "yes"),
	},
	{
		Name: "conduit-script-inline", Issue: 17, Full: true,
		Note: "the conduit-script row with timeoutMs: 0 (the script runs on the request's goroutine, no budget); conduit-full",
		Site: `proxy: "http://{{.Upstream}}"
middleware:
  - {type: script, path: "{{.Repo}}/modules/script/testdata/scripts/oneheader.go", timeoutMs: 0}`,
		Check: checkHeader("X-Script", "yes"),
	},
	{
		Name: "conduit-traefik-plugin", Issue: 17, Full: true,
		Note: "middleware[]: the example Traefik plugin (plugins/) adding one response header; conduit-full",
		Site: `proxy: "http://{{.Upstream}}"
middleware:
  - type: traefik
    path: "{{.Repo}}/plugins/plugins-local/src/github.com/conduitproxy/conduit-plugin-stamp"
    config: {rules: [{prefix: /, header: X-Stamp, value: "1"}]}`,
		Check: checkHeader("X-Stamp", "1"),
	},
	{
		Name: "conduit-metrics", Issue: 7, Note: "metrics: {} and logging: false",
		Site: `proxy: "http://{{.Upstream}}"
metrics: {}
logging: false`,
		Check: checkMetrics,
	},
	{
		Name: "conduit-tcp", Issue: 19, Full: true, H1Only: true,
		Note: "tcp: the HTTP/1.1 connections relayed at layer 4 (compare haproxy-tcp)",
		Site: `tcp:
  targets: ["{{.Upstream}}"]
  accessLog: false`,
	},
}

// renderConduitConfig writes the Conduit config of variant v: one site per listener the
// selected modes need (HTTP/1.1, h2c, TLS), each with the variant's site keys.
func renderConduitConfig(v conduitVariant, d tmplData, path string) (string, error) {
	t, err := template.New(v.Name).Option("missingkey=error").Parse(v.Site)
	if err != nil {
		return "", fmt.Errorf("row %s: parse site template: %w", v.Name, err)
	}
	var site bytes.Buffer
	if err := t.Execute(&site, d); err != nil {
		return "", fmt.Errorf("row %s: render site template: %w", v.Name, err)
	}
	body := indent(strings.TrimRight(site.String(), "\n"), "    ")
	var sb strings.Builder
	fmt.Fprintf(&sb, "# conduit-bench row %s: %s\n", v.Name, v.Note)
	if v.Needs&needAdmin != 0 {
		fmt.Fprintf(&sb, "global:\n  admin:\n    bind: %q\n", d.AdminAddr)
	}
	sb.WriteString("sites:\n")
	fmt.Fprintf(&sb, "  - port: %d\n%s\n", d.Port, body)
	if d.H2CPort != 0 && !v.H1Only {
		fmt.Fprintf(&sb, "  - port: %d\n    http2: {h2c: true}\n%s\n", d.H2CPort, body)
	}
	if d.TLSPort != 0 && !v.H1Only {
		h3 := ""
		if d.H3 {
			h3 = "    http3: true\n"
		}
		fmt.Fprintf(&sb, "  - port: %d\n    tls: {cert: %q, key: %q}\n%s%s\n", d.TLSPort, d.Cert, d.Key, h3, body)
	}
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return path, nil
}

// wasmGuests is the absolute path of plugins/wasm under the repository at repo.
func wasmGuests(repo string) string {
	abs, err := filepath.Abs(filepath.Join(repo, "plugins", "wasm"))
	if err != nil {
		return filepath.Join(repo, "plugins", "wasm")
	}
	return abs
}

// indent prefixes every line of s with pre.
func indent(s, pre string) string {
	return pre + strings.ReplaceAll(s, "\n", "\n"+pre)
}

// conduitTarget is the row of variant v.
func conduitTarget(v conduitVariant) Target {
	return Target{
		Name:    v.Name,
		Note:    v.Note,
		variant: &v,
		h1Only:  v.H1Only,
		h3:      !v.H1Only,
		start: func(b *bench, d tmplData) (*proc, error) {
			bin, err := b.conduitBinary(v.Full)
			if v.Alt {
				bin, err = b.cfg.conduitAltBin, nil
			}
			if err != nil {
				return nil, err
			}
			cfg, err := renderConduitConfig(v, d, filepath.Join(d.Dir, "conduit.yaml"))
			if err != nil {
				return nil, err
			}
			return startProc(v.Name, b.cfg.cpuProxy, filepath.Join(d.Dir, "stderr.log"), nil,
				bin, "-c", cfg, "--bind", "127.0.0.1")
		},
	}
}

// configProblems returns the first line of a Conduit log that says the variant's config was
// not taken as written (a key whose feature is not compiled in, an unknown key), or "".
func configProblems(p *proc) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, "not compiled") || strings.Contains(line, "unknown key") ||
			strings.Contains(line, "lets every request pass") {
			return strings.TrimSpace(line)
		}
	}
	return ""
}
