package main

import (
	"bytes"
	"embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"
)

//go:embed templates
var templatesFS embed.FS

// tmplData is what the config templates see.
type tmplData struct {
	Dir      string // per-process temp dir (configs, logs, nginx temp paths)
	Listen   string // 127.0.0.1:port the process must listen on (HTTP/1.1)
	Port     int    // port of Listen
	Upstream string // 127.0.0.1:port of the upstream
	Body     string // upstream response body
	// H2CListen/TLSListen are the h2c (prior knowledge) and TLS listeners; "" (port 0) when
	// no selected mode uses them.
	H2CListen, TLSListen string
	H2CPort, TLSPort     int
	// Upstreams are three upstream listeners (issue 4's balancing rows) and CacheUpstream
	// one more (the cache row); each answers with an extra X-Upstream: "<port> <request id>".
	Upstreams     []string
	CacheUpstream string
	// H3: the h3 mode runs and the row serves HTTP/3 on UDP at TLSPort.
	H3 bool
	// UpstreamH2C/UpstreamTLS are the upstream's own h2c and TLS listeners (direct rows).
	UpstreamH2C, UpstreamTLS string
	Cert, Key, CertKey       string // PEM files of the ECDSA P-256 certificate; CertKey has both
	JWTSecret, JWKSURL       string
	RedisURL                 string
	// AuthzGRPC and AuthzHTTP are the allow-all authorization service's ext_authz gRPC
	// address and forwardAuth HTTP address (./cmd/conduit-bench/authz).
	AuthzGRPC, AuthzHTTP string
	AdminAddr            string // 127.0.0.1:port for global.admin.bind
	// WasmGuests is the absolute path of the repository's plugins/wasm (the WASM rows'
	// guests).
	WasmGuests string
	Repo       string // absolute module root (-repo): scripts and plugins the rows load
}

// Target is one row of the benchmark: the load generator talks to it, and it forwards to
// the upstream. "direct" has no proxy at all and gives the baseline.
//
// To benchmark another Conduit configuration (jwt, ratelimit, cache, ...), add a template
// templates/conduit-NAME.yaml.tmpl and one entry conduitTarget("conduit-NAME", that file).
type Target struct {
	Name    string
	Binary  string // program that must be on PATH; "" when the harness provides it
	Note    string // one line for docs/help
	start   func(b *bench, d tmplData) (*proc, error)
	variant *conduitVariant // Conduit rows only
	h1Only  bool            // serves HTTP/1.1 only: the h2c and h2tls modes skip it
	h3      bool            // serves HTTP/3 at its TLS port when the h3 mode runs (else h3 skips it)
}

// allTargets is the ordered row list; -peers selects from it. The Conduit rows come from
// conduitVariants.
var allTargets = buildTargets()

func buildTargets() []Target {
	ts := []Target{
		{Name: "direct", Note: "no proxy: load generator straight to the upstream (baseline)"},
		conduitTarget(conduitVariants[0]),
		{Name: "nginx", Binary: "nginx", Note: "1 worker, upstream keepalive 64", start: startNginxProxy},
		{Name: "caddy", Binary: "caddy", Note: "reverse_proxy, keepalive_idle_conns_per_host 64; HTTP/3 on its TLS site in the h3 mode", start: startCaddy, h3: true},
		{Name: "haproxy", Binary: "haproxy", Note: "nbthread 1, default connection reuse", start: startHAProxy},
		{Name: "haproxy-tcp", Binary: "haproxy", Note: "nbthread 1, mode tcp: the peer of conduit-tcp", start: startHAProxyTCP, h1Only: true},
		{Name: "gostd", Note: "floor: net/http server + httputil.ReverseProxy (the reference's Go stdlib peer)", start: startFloor("gostd"), h1Only: true},
		{Name: "gofloor", Note: "floor: raw sockets, http.ReadRequest/ReadResponse, no net/http server or Transport (bench only)", start: startFloor("raw"), h1Only: true},
		{Name: "goloop", Note: "floor: the gofloor proxy on epoll event loops (x/sys/unix), one per GOMAXPROCS, upstreams on the same loop (bench only)", start: startFloor("loop"), h1Only: true},
	}
	for _, v := range conduitVariants[1:] {
		ts = append(ts, conduitTarget(v))
	}
	return ts
}

// peerAliases expand in -peers: "peers" is the default comparison, "variants" every Conduit
// configuration row, "all" everything.
func peerAliases() map[string][]string {
	var variants, all []string
	for _, v := range conduitVariants[1:] {
		if !v.Alt {
			variants = append(variants, v.Name)
		}
	}
	for _, t := range allTargets {
		all = append(all, t.Name)
	}
	return map[string][]string{
		"peers":    {"direct", "conduit", "nginx", "caddy", "haproxy"},
		"floors":   {"gostd", "gofloor", "goloop"},
		"variants": variants,
		"all":      all,
	}
}

// findTarget returns the target called name.
func findTarget(name string) (Target, bool) {
	for _, t := range allTargets {
		if t.Name == name {
			return t, true
		}
	}
	return Target{}, false
}

// targetNames lists every known target, for help and errors.
func targetNames() string {
	names := make([]string, len(allTargets))
	for i, t := range allTargets {
		names[i] = t.Name
	}
	return strings.Join(names, ",")
}

// unavailable says why t cannot run on this machine, or "" if it can.
func (t Target) unavailable(b *bench) string {
	if t.variant != nil && t.variant.Needs&needRedis != 0 && b.svc.redisErr != "" {
		return b.svc.redisErr
	}
	if t.variant != nil && t.variant.Needs&needAuthz != 0 && b.svc.authzErr != "" {
		return b.svc.authzErr
	}
	if t.variant != nil && t.variant.Alt && b.cfg.conduitAltBin == "" {
		return "needs -conduit-alt-bin"
	}
	if t.Binary == "" {
		return ""
	}
	if _, err := exec.LookPath(t.Binary); err != nil {
		return fmt.Sprintf("%s not installed (run with -install)", t.Binary)
	}
	return ""
}

// renderTemplate writes templates/name filled with d to path and returns path.
func renderTemplate(name string, d tmplData, path string) (string, error) {
	src, err := templatesFS.ReadFile("templates/" + name)
	if err != nil {
		return "", fmt.Errorf("template %s: %w", name, err)
	}
	t, err := template.New(name).Option("missingkey=error").Parse(string(src))
	if err != nil {
		return "", fmt.Errorf("parse template %s: %w", name, err)
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, d); err != nil {
		return "", fmt.Errorf("render template %s: %w", name, err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return path, nil
}

// startNginx renders an nginx template and runs nginx in the foreground (master + worker).
func startNginx(name, tmplName string, cpu int, d tmplData) (*proc, error) {
	if err := os.MkdirAll(filepath.Join(d.Dir, "tmp"), 0o755); err != nil {
		return nil, fmt.Errorf("nginx temp dir: %w", err)
	}
	conf, err := renderTemplate(tmplName, d, filepath.Join(d.Dir, "nginx.conf"))
	if err != nil {
		return nil, err
	}
	// -e overrides the error log nginx opens before reading its config (else /var/log/nginx).
	return startProc(name, cpu, filepath.Join(d.Dir, "stderr.log"), nil,
		"nginx", "-c", conf, "-e", filepath.Join(d.Dir, "error.log"))
}

// startNginxProxy starts nginx as the proxy under test.
func startNginxProxy(b *bench, d tmplData) (*proc, error) {
	return startNginx("nginx", "nginx-proxy.conf.tmpl", b.cfg.cpuProxy, d)
}

// startCaddy starts Caddy from a Caddyfile; the XDG/HOME variables keep it inside d.Dir.
func startCaddy(b *bench, d tmplData) (*proc, error) {
	conf, err := renderTemplate("Caddyfile.tmpl", d, filepath.Join(d.Dir, "Caddyfile"))
	if err != nil {
		return nil, err
	}
	env := []string{"HOME=" + d.Dir, "XDG_DATA_HOME=" + d.Dir + "/data", "XDG_CONFIG_HOME=" + d.Dir + "/cfg"}
	return startProc("caddy", b.cfg.cpuProxy, filepath.Join(d.Dir, "stderr.log"), env,
		"caddy", "run", "--config", conf, "--adapter", "caddyfile")
}

// startHAProxy starts HAProxy in the foreground (-db), one process.
func startHAProxy(b *bench, d tmplData) (*proc, error) {
	conf, err := renderTemplate("haproxy.cfg.tmpl", d, filepath.Join(d.Dir, "haproxy.cfg"))
	if err != nil {
		return nil, err
	}
	return startProc("haproxy", b.cfg.cpuProxy, filepath.Join(d.Dir, "stderr.log"), nil,
		"haproxy", "-db", "-f", conf)
}

// startHAProxyTCP starts HAProxy as a layer-4 relay (mode tcp), the peer of conduit-tcp.
func startHAProxyTCP(b *bench, d tmplData) (*proc, error) {
	conf, err := renderTemplate("haproxy-tcp.cfg.tmpl", d, filepath.Join(d.Dir, "haproxy.cfg"))
	if err != nil {
		return nil, err
	}
	return startProc("haproxy", b.cfg.cpuProxy, filepath.Join(d.Dir, "stderr.log"), nil,
		"haproxy", "-db", "-f", conf)
}

// startFloor starts one of the Go floor proxies of ./cmd/conduit-bench/floor (built once
// per run, like Conduit, static and stripped).
func startFloor(mode string) func(b *bench, d tmplData) (*proc, error) {
	return func(b *bench, d tmplData) (*proc, error) {
		bin, err := b.helperBinary("floor", "./cmd/conduit-bench/floor")
		if err != nil {
			return nil, err
		}
		name := "go" + mode
		if mode == "raw" {
			name = "gofloor"
		}
		return startProc(name, b.cfg.cpuProxy, filepath.Join(d.Dir, "stderr.log"), nil,
			bin, "-mode", mode, "-listen", d.Listen, "-upstream", d.Upstream)
	}
}

// helperBinary builds one of the harness's own programs (pkg) as work/name on first use,
// the way releases are built; a failed build is remembered and fails every row that needs it.
func (b *bench) helperBinary(name, pkg string) (string, error) {
	if b.helpers == nil {
		b.helpers = map[string]*builtBinary{}
	}
	if hb := b.helpers[name]; hb != nil {
		return hb.path, hb.err
	}
	hb := &builtBinary{path: filepath.Join(b.workDir, name)}
	fmt.Printf("conduit-bench: building %s\n", pkg)
	hb.err = goBuild(b.cfg.repo, hb.path, pkg)
	b.helpers[name] = hb
	return hb.path, hb.err
}

// logHints returns the first warning/error lines of a process log (or its tail), for reasons.
func logHints(p *proc) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return ""
	}
	var hits []string
	for _, line := range strings.Split(string(b), "\n") {
		l := strings.ToLower(line)
		if strings.Contains(l, "warn") || strings.Contains(l, "error") || strings.Contains(l, "emerg") {
			hits = append(hits, strings.TrimSpace(line))
		}
		if len(hits) == 2 {
			break
		}
	}
	if len(hits) == 0 {
		return p.logTail(2)
	}
	return strings.Join(hits, " | ")
}

// upstreamBody is the fixed response body: bodyBytes ASCII letters, no quoting needed in
// any config language.
func upstreamBody(bodyBytes int) string {
	return strings.Repeat("x", max(bodyBytes, 0))
}

// repoAbs is -repo as an absolute path ("" if it cannot be resolved).
func (b *bench) repoAbs() string {
	abs, err := filepath.Abs(b.cfg.repo)
	if err != nil {
		return ""
	}
	return abs
}

// tmplDataFor prepares a fresh temp dir and port for one process.
func (b *bench) tmplDataFor(name string) (tmplData, error) {
	dir, err := os.MkdirTemp(b.workDir, name+"-")
	if err != nil {
		return tmplData{}, fmt.Errorf("temp dir for %s: %w", name, err)
	}
	ports, err := freePorts(4)
	if err != nil {
		return tmplData{}, err
	}
	d := tmplData{
		Dir:           dir,
		Listen:        addrOf(ports[0]),
		Port:          ports[0],
		Upstream:      b.upstreamAddr,
		Body:          b.body,
		Upstreams:     b.upstreams,
		CacheUpstream: b.cacheUpstream,
		UpstreamH2C:   b.upstreamEP.h2c,
		UpstreamTLS:   b.upstreamEP.tls,
		Cert:          b.svc.cert,
		Key:           b.svc.key,
		CertKey:       b.svc.certKey,
		JWTSecret:     b.svc.jwtSecret,
		JWKSURL:       b.svc.jwksURL,
		RedisURL:      "redis://" + b.svc.redisAddr + "/0",
		AuthzGRPC:     b.svc.authzGRPC,
		AuthzHTTP:     b.svc.authzHTTP,
		AdminAddr:     addrOf(ports[3]),
		WasmGuests:    wasmGuests(b.cfg.repo),
		Repo:          b.repoAbs(),
	}
	if b.wantsListener("h2c") {
		d.H2CPort, d.H2CListen = ports[1], addrOf(ports[1])
	}
	if b.wantsListener("tls") || b.wantsListener("h3") {
		d.TLSPort, d.TLSListen = ports[2], addrOf(ports[2])
	}
	d.H3 = b.wantsListener("h3")
	return d, nil
}

func addrOf(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

// endpointOf is where the load generator reaches the process configured with d.
func endpointOf(d tmplData) endpoint {
	return endpoint{h1: d.Listen, h2c: d.H2CListen, tls: d.TLSListen}
}
