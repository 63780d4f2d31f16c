// Package wasm runs WebAssembly middleware on wazero (no cgo): the `wasm` type of a site's
// `middleware[]` list. A guest speaks one of two ABIs, found from its imports and exports
// or named by the entry's `abi`: the `conduit` host module (conduitabi.go, the ABI described
// in docs/wasm.md and docs/compatibility.md) or http-wasm's `http_handler` host module
// (httpwasm.go, the ABI of Traefik's WASM plugins). Every call into a guest is bounded by
// the entry's timeoutMs and every instance by its memoryLimitMiB; a guest that traps, runs
// out of time or lacks an export lets the request pass (onError: allow, the default) or
// answers 500 (onError: deny).
package wasm

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/config"
)

func init() {
	core.Register(core.Module{
		ID:              "http.middleware.wasm",
		Feature:         "wasm",
		Description:     "WebAssembly middleware (the conduit ABI and http-wasm) on wazero",
		Stage:           core.StageNone,
		Guard:           true,
		GlobalKeys:      []string{"wasm"},
		Global:          provisionGlobal,
		MiddlewareTypes: []string{"wasm"},
		MiddlewareEntry: newEntry,
		ConfigTypes:     configTypes,
	})
}

// Defaults of an entry's limits.
const (
	// DefaultMemoryLimitMiB caps the linear memory of one guest instance.
	DefaultMemoryLimitMiB = 16
	// maxMemoryLimitMiB is the most a 32-bit linear memory can hold (65,536 pages of 64 KiB).
	maxMemoryLimitMiB = 4096
	// DefaultTimeout bounds one call into a guest (instantiation included). It is wall
	// time, so it leaves room for a loaded machine's scheduling delays: a guest call takes
	// microseconds, and 100 ms was seen to expire on a busy 2-core machine.
	DefaultTimeout = 500 * time.Millisecond
	// maxTimeout bounds timeoutMs: a guest call holds a request.
	maxTimeout = time.Minute
	// maxGuestBytes bounds the size of a .wasm file.
	maxGuestBytes = 64 << 20
)

// The values of `instances` (docs/wasm.md#instances).
const (
	// instancesFresh instantiates the guest for every request.
	instancesFresh = "fresh"
	// instancesReset keeps instances and restores their memory and mutable globals to
	// their state after instantiation when a request is done.
	instancesReset = "reset"
	// instancesReuse keeps instances as they are.
	instancesReuse = "reuse"
)

// DefaultInstances is `instances` unless the entry says otherwise.
const DefaultInstances = instancesReset

// The ABIs a guest may speak.
const (
	abiConduit  = "conduit"
	abiHTTPWasm = "http-wasm"
)

// entryConfig is one `middleware[]` entry of type wasm.
type entryConfig struct {
	Type           string            `json:"type"`
	Path           string            `json:"path" cfg:"required"`
	Config         config.Node       `json:"config"`
	Phase          string            `json:"phase"`
	ABI            string            `json:"abi"`
	MemoryLimitMiB *int              `json:"memoryLimitMiB"`
	TimeoutMs      *int              `json:"timeoutMs"`
	OnError        string            `json:"onError"`
	Instances      string            `json:"instances"`
	Env            map[string]string `json:"env"`
	Mounts         []string          `json:"mounts"`
}

// entrySpec is a decoded, checked entry.
type entrySpec struct {
	file      string
	code      []byte
	config    []byte // the JSON of `config`; nil when absent
	response  bool
	abi       string // "" until detected
	memPages  uint32
	timeout   time.Duration
	deny      bool
	instances string // instancesFresh, instancesReuse or instancesReset
	env       [][2]string
	mounts    [][2]string // host dir, guest dir
}

func newEntry(ctx *core.SiteContext, spec core.MiddlewareSpec) core.Middleware {
	var c entryConfig
	before := len(ctx.Diag.Errors())
	config.Decode(spec.Node, spec.Path, &c, ctx.Diag)
	if len(ctx.Diag.Errors()) > before {
		return nil
	}
	es, ok := checkEntry(ctx, spec.Path, &c)
	if !ok {
		return nil
	}
	g := globalFor(ctx.Global)
	mw, err := build(ctx, g, es)
	if err != nil {
		if errors.Is(err, errEntry) {
			ctx.Errorf(config.Join(spec.Path, "phase"), "%v", err)
			return nil
		}
		if es.deny {
			ctx.Errorf(config.Join(spec.Path, "path"), "%v (onError: deny refuses to serve without it)", err)
			return nil
		}
		ctx.Warnf(config.Join(spec.Path, "path"), "%v; the entry lets every request pass (onError: allow)", err)
		return nil
	}
	return mw
}

// checkEntry validates c's values and reads the guest's file.
func checkEntry(ctx *core.SiteContext, path string, c *entryConfig) (*entrySpec, bool) {
	es := &entrySpec{file: c.Path, timeout: DefaultTimeout}
	ok := true
	bad := func(key, format string, args ...any) {
		ctx.Errorf(config.Join(path, key), format, args...)
		ok = false
	}
	if c.Type != "wasm" { // the core dispatches only this module's type here
		bad("type", "must be wasm, got %q", c.Type)
	}
	// choice returns value when it is one of allowed ("" means allowed[0]).
	choice := func(key, value string, allowed ...string) string {
		if value == "" || slices.Contains(allowed, value) {
			return cmp.Or(value, allowed[0])
		}
		last := len(allowed) - 1
		bad(key, "must be %s or %s, got %q", strings.Join(allowed[:last], ", "), allowed[last], value)
		return allowed[0]
	}
	es.response = choice("phase", c.Phase, "request", "response") == "response"
	if abi := choice("abi", c.ABI, "auto", abiConduit, abiHTTPWasm); abi != "auto" {
		es.abi = abi
	}
	es.deny = choice("onError", c.OnError, "allow", "deny") == "deny"
	es.instances = choice("instances", c.Instances, DefaultInstances, instancesFresh, instancesReuse)
	mib := DefaultMemoryLimitMiB
	if c.MemoryLimitMiB != nil {
		mib = *c.MemoryLimitMiB
		if mib < 1 || mib > maxMemoryLimitMiB {
			bad("memoryLimitMiB", "must be between 1 and %d, got %d", maxMemoryLimitMiB, mib)
		}
	}
	es.memPages = uint32(min(max(mib, 1), maxMemoryLimitMiB)) * 16
	if c.TimeoutMs != nil {
		es.timeout = time.Duration(*c.TimeoutMs) * time.Millisecond
		if es.timeout <= 0 || es.timeout > maxTimeout {
			bad("timeoutMs", "must be between 1 and %d, got %d", maxTimeout.Milliseconds(), *c.TimeoutMs)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(c.Env)) {
		if k == "" || !validEnvName(k) {
			bad(config.Join("env", k), "is not a valid environment variable name")
			continue
		}
		es.env = append(es.env, [2]string{k, c.Env[k]})
	}
	for i, m := range c.Mounts {
		host, guest, err := parseMount(m)
		if err != nil {
			bad(config.Index("mounts", i), "%v", err)
			continue
		}
		es.mounts = append(es.mounts, [2]string{host, guest})
	}
	if c.Config != nil {
		b, err := json.Marshal(c.Config)
		if err != nil {
			bad("config", "cannot be encoded as JSON: %v", err)
		}
		es.config = b
	}
	if c.Path == "" {
		bad("path", "must name a .wasm file")
		return es, false
	}
	code, err := readGuest(c.Path)
	if err != nil {
		bad("path", "%v", err)
		return es, false
	}
	es.code = code
	return es, ok
}

// readGuest reads a .wasm file of at most maxGuestBytes.
func readGuest(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading the guest: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("reading the guest: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("reading the guest: %s is not a regular file", path)
	}
	if st.Size() > maxGuestBytes {
		return nil, fmt.Errorf("reading the guest: %s is %d bytes, more than the %d a guest may have", path, st.Size(), maxGuestBytes)
	}
	code := make([]byte, st.Size())
	if _, err := io.ReadFull(f, code); err != nil {
		return nil, fmt.Errorf("reading the guest: %w", err)
	}
	return code, nil
}

// parseMount splits a `mounts` value "HOST:GUEST" (an optional ":ro" suffix is accepted;
// every mount is read-only).
func parseMount(m string) (host, guest string, err error) {
	s := m
	if len(s) > 3 && s[len(s)-3:] == ":ro" {
		s = s[:len(s)-3]
	}
	for i := 0; i < len(s); i++ {
		if s[i] == ':' {
			host, guest = s[:i], s[i+1:]
			break
		}
	}
	if host == "" {
		host, guest = s, s
	}
	if !filepath.IsAbs(host) {
		return "", "", fmt.Errorf("%q: the host directory must be an absolute path", m)
	}
	if guest == "" || guest[0] != '/' {
		return "", "", fmt.Errorf("%q: the guest directory must be an absolute path", m)
	}
	st, err := os.Stat(host)
	if err != nil {
		return "", "", fmt.Errorf("%q: %w", m, err)
	}
	if !st.IsDir() {
		return "", "", fmt.Errorf("%q: %s is not a directory", m, host)
	}
	return host, guest, nil
}

func validEnvName(k string) bool {
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c == '=' || c == 0 {
			return false
		}
	}
	return true
}
