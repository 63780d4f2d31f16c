package wasm

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/conduitproxy/conduit/core"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"golang.org/x/net/http/httpguts"
)

// This file is the `conduit` host module: the host functions a guest of the conduit ABI
// imports (docs/wasm.md has the table). Strings cross as (pointer, length) pairs in the
// guest's memory; a function that fills a buffer writes at most the buffer's length
// (silently truncating), returns the bytes written, and returns -1 when the value is
// absent. A pointer outside the guest's memory traps the call.

// conduitModule is the host module's name.
const conduitModule = "conduit"

// Result kinds of a host function.
const (
	resNone     = iota // returns nothing
	resI32             // returns an i32
	resOptional        // returns nothing or an i32 (0), as the guest declares it
)

// hostFunc is one function of the conduit host module.
type hostFunc struct {
	params int // all i32
	result int
	fn     func(c *call, mod api.Module, stack []uint64) int32
}

// absent is what a getter returns when there is no value.
const absent = -1

var hostFuncs = map[string]hostFunc{
	// Request phase: reads.
	"conduit_get_method":    {2, resI32, func(c *call, m api.Module, s []uint64) int32 { return c.put(m, s, c.r.Method) }},
	"conduit_get_path":      {2, resI32, func(c *call, m api.Module, s []uint64) int32 { return c.put(m, s, c.r.URL.EscapedPath()) }},
	"conduit_get_query":     {2, resI32, getQuery},
	"conduit_get_uri":       {2, resI32, getURI},
	"conduit_get_client_ip": {2, resI32, getClientIP},
	"conduit_get_request_id": {2, resI32, func(c *call, m api.Module, s []uint64) int32 {
		if st := core.State(c.r); st != nil && st.ID != "" {
			return c.put(m, s, st.ID)
		}
		return absent
	}},
	"conduit_get_header":       {4, resI32, getHeader},
	"conduit_get_header_count": {0, resI32, func(c *call, _ api.Module, _ []uint64) int32 { return int32(len(c.headerNames())) }},
	"conduit_get_header_names": {2, resI32, func(c *call, m api.Module, s []uint64) int32 {
		return c.put(m, s, strings.Join(c.headerNames(), "\n"))
	}},
	"conduit_get_plugin_config": {2, resI32, func(c *call, m api.Module, s []uint64) int32 {
		if c.e.spec.config == nil {
			return absent
		}
		return c.putBytes(m, s, c.e.spec.config)
	}},
	// Request phase: changes, applied when the guest continues (request headers) or answers.
	"conduit_set_request_header":    {4, resOptional, setRequestHeader},
	"conduit_remove_request_header": {2, resOptional, removeRequestHeader},
	"conduit_set_response_status":   {1, resOptional, setResponseStatus},
	"conduit_set_response_header":   {4, resOptional, setResponseHeader},
	"conduit_set_response_body":     {2, resOptional, setResponseBody},
	"conduit_abort_with_redirect":   {2, resOptional, abortWithRedirect},
	"conduit_log":                   {3, resOptional, guestLog},
	// Response phase.
	"conduit_get_response_status": {0, resI32, func(c *call, _ api.Module, _ []uint64) int32 {
		if !c.response {
			return absent
		}
		return int32(c.status)
	}},
	"conduit_get_response_header":    {4, resI32, getResponseHeader},
	"conduit_remove_response_header": {2, resOptional, removeResponseHeader},
}

// HostFunctionNames lists the functions of the conduit host module, sorted.
func HostFunctionNames() []string {
	names := make([]string, 0, len(hostFuncs))
	for n := range hostFuncs {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// instantiateConduitHost builds the conduit host module in rt with the signatures cm's
// imports declare (a setter may be declared with or without an i32 result), after checking
// that every import from it is a known function with the right parameters.
func instantiateConduitHost(ctx context.Context, rt wazero.Runtime, cm wazero.CompiledModule) error {
	b := rt.NewHostModuleBuilder(conduitModule)
	declared := map[string]bool{}
	for _, def := range cm.ImportedFunctions() {
		mod, name, _ := def.Import()
		if mod != conduitModule {
			continue
		}
		hf, ok := hostFuncs[name]
		if !ok {
			return fmt.Errorf("the guest imports %s.%s, which this host does not have (docs/wasm.md lists the functions)", mod, name)
		}
		if declared[name] {
			continue
		}
		params, results := def.ParamTypes(), def.ResultTypes()
		if len(params) != hf.params || slices.ContainsFunc(params, func(t api.ValueType) bool { return t != api.ValueTypeI32 }) {
			return fmt.Errorf("the guest imports %s.%s with %d parameters %v; it takes %d i32", mod, name, len(params), typeNames(params), hf.params)
		}
		okResult := false
		switch {
		case len(results) == 0:
			okResult = hf.result != resI32
		case len(results) == 1 && results[0] == api.ValueTypeI32:
			okResult = hf.result != resNone
		}
		if !okResult {
			return fmt.Errorf("the guest imports %s.%s returning %v, which does not match the host function", mod, name, typeNames(results))
		}
		declared[name] = true
		fn, hasResult := hf.fn, len(results) == 1
		b = b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, m api.Module, stack []uint64) {
			c, ok := ctx.Value(callKey{}).(*call)
			if !ok {
				panic(fmt.Errorf("%s called outside a request", name))
			}
			v := fn(c, m, stack)
			if hasResult {
				stack[0] = api.EncodeI32(v)
			}
		}), params, results).Export(name)
	}
	_, err := b.Instantiate(ctx)
	return err
}

func typeNames(ts []api.ValueType) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = api.ValueTypeName(t)
	}
	return out
}

// callKey finds the call in the context a guest function runs with.
type callKey struct{}

// hdrOp is a pending request header change.
type hdrOp struct {
	name, value string
	remove      bool
}

// call is one call into a guest: the request it serves and what the guest asked for.
// It is the context the guest runs with (Value answers callKey with the call itself); its
// parent is context.Background, not the request's context: the watchdog bounds the call,
// and wazero reads the context's values on every call (a request's context is a chain of
// several). Request-phase calls come from the entry's pool (newCall, free).
type call struct {
	context.Context
	e        *conduitEntry
	r        *http.Request
	response bool        // on_response: the response phase
	hdr      http.Header // response phase: the response's header, changed in place
	status   int         // response phase: the response's status

	// Request phase: the request header changes, and the answer when the guest aborts.
	reqOps      []hdrOp
	abortStatus int
	abortHdr    http.Header
	redirect    string
	redirected  bool
	// Both phases: a body the guest set.
	body    []byte
	bodySet bool
	// Response phase: set_response_body is ignored (1xx, 204, 304, Content-Length: 0).
	bodyIgnored bool
	// hdrBytes counts the bytes of header names and values the guest gave the functions
	// that change headers (spendHeaderBytes).
	hdrBytes int
	// logs counts the log lines the call wrote for the guest (logLine).
	logs int
}

// logLine writes a log line for the guest's call, within maxGuestLogLines.
func (c *call) logLine(level slog.Level, msg string, args ...any) {
	ctx := context.Background()
	if c.r != nil {
		ctx = c.r.Context()
	}
	if !c.e.logger.Enabled(ctx, level) || !guestLogAllowed(ctx, c.e.logger, &c.logs, c.e.spec.file) {
		return
	}
	c.e.logger.Log(ctx, level, msg, args...)
}

// spendHeaderBytes counts n bytes given to fn, a function that changes headers, and traps
// the call past maxHeaderChangeBytes.
func (c *call) spendHeaderBytes(fn string, n int) {
	if err := spendHeaderBytes(&c.hdrBytes, n); err != nil {
		trap("%s: %w", fn, err)
	}
}

// maxPooledBody is the largest body buffer a pooled call or hwState keeps.
const maxPooledBody = 64 << 10

// newCall returns a request-phase call of e serving r; free returns it.
func newCall(e *conduitEntry, r *http.Request) *call {
	c, ok := e.calls.Get().(*call)
	if !ok {
		c = new(call)
	}
	c.Context, c.e, c.r = context.Background(), e, r
	return c
}

// free clears c (keeping its buffers) and returns it to its entry's pool: nothing may use
// it afterwards.
func (c *call) free() {
	calls := &c.e.calls
	body, ops, hdr := c.body[:0], c.reqOps[:0], c.abortHdr
	if cap(body) > maxPooledBody {
		body = nil
	}
	clear(ops[:cap(ops)])
	clear(hdr)
	*c = call{body: body, reqOps: ops, abortHdr: hdr}
	calls.Put(c)
}

// Value implements context.Context.
func (c *call) Value(key any) any {
	if _, ok := key.(callKey); ok {
		return c
	}
	return c.Context.Value(key)
}

// trap stops the guest's call with err.
func trap(format string, args ...any) { panic(fmt.Errorf(format, args...)) }

// read returns the guest's bytes at ptr, len (a view of its memory, valid during the call).
func read(m api.Module, ptr, n uint64) []byte {
	b, ok := m.Memory().Read(uint32(ptr), uint32(n))
	if !ok {
		trap("out of bounds memory access: %d bytes at %d", uint32(n), uint32(ptr))
	}
	return b
}

// readString copies a guest string.
func readString(m api.Module, ptr, n uint64) string { return string(read(m, ptr, n)) }

// put writes v into the buffer stack[0], stack[1] (truncating) and returns the length.
func (c *call) put(m api.Module, stack []uint64, v string) int32 {
	return c.putAt(m, stack[0], stack[1], v)
}

func (c *call) putBytes(m api.Module, stack []uint64, v []byte) int32 {
	return c.putAt(m, stack[0], stack[1], string(v))
}

func (c *call) putAt(m api.Module, ptr, limit uint64, v string) int32 {
	n := min(uint32(limit), uint32(len(v)))
	if n == 0 {
		if _, ok := m.Memory().Read(uint32(ptr), 0); !ok {
			trap("out of bounds memory access at %d", uint32(ptr))
		}
		return 0
	}
	if !m.Memory().WriteString(uint32(ptr), v[:n]) {
		trap("out of bounds memory access: %d bytes at %d", n, uint32(ptr))
	}
	return int32(n)
}

func getQuery(c *call, m api.Module, s []uint64) int32 {
	u := c.r.URL
	if u.RawQuery == "" && !u.ForceQuery {
		return absent
	}
	return c.put(m, s, u.RawQuery)
}

func getURI(c *call, m api.Module, s []uint64) int32 {
	u := c.r.URL
	uri := u.EscapedPath()
	if u.RawQuery != "" || u.ForceQuery {
		uri += "?" + u.RawQuery
	}
	return c.put(m, s, uri)
}

func getClientIP(c *call, m api.Module, s []uint64) int32 {
	ip := core.ClientIP(c.r)
	if !ip.IsValid() {
		return absent
	}
	return c.put(m, s, ip.String())
}

// requestHeader returns the first value of a request header (the Host header included),
// matched case-insensitively.
func (c *call) requestHeader(name string) (string, bool) {
	if strings.EqualFold(name, "host") {
		return c.r.Host, c.r.Host != ""
	}
	vv := c.r.Header[http.CanonicalHeaderKey(name)]
	if len(vv) == 0 {
		return "", false
	}
	return vv[0], true
}

// headerNames lists the distinct request header names, lower-cased, Host included.
func (c *call) headerNames() []string {
	names := make([]string, 0, len(c.r.Header)+1)
	if c.r.Host != "" {
		names = append(names, "host")
	}
	for k := range c.r.Header {
		names = append(names, strings.ToLower(k))
	}
	slices.Sort(names)
	return names
}

func getHeader(c *call, m api.Module, s []uint64) int32 {
	v, ok := c.requestHeader(readString(m, s[0], s[1]))
	if !ok {
		return absent
	}
	return c.putAt(m, s[2], s[3], v)
}

// framingHeaders are the header fields a guest may not set or remove: they frame the
// message or the connection, which the server and the proxy own.
var framingHeaders = []string{"Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive",
	"Upgrade", "Te", "Trailer", "Proxy-Connection", "Host"}

// headerName checks a name a guest gave (b, a view of its memory): a token, not a framing
// field, and returns its canonical form. It logs and reports false otherwise. Names that
// passed are remembered by the entry (names), so a guest that sets the same header on
// every request costs no allocation or check for its name.
func (c *call) headerName(fn string, b []byte) (string, bool) {
	if canon, ok := (*c.e.names.Load())[string(b)]; ok {
		return canon, true
	}
	name := string(b)
	if !core.IsToken(name) {
		c.logLine(slog.LevelWarn, "wasm: guest gave an invalid header name; ignored", "function", fn, "name", quoteInput(name))
		return "", false
	}
	canon := http.CanonicalHeaderKey(name)
	if slices.Contains(framingHeaders, canon) {
		c.logLine(slog.LevelWarn, "wasm: guest may not change this header; ignored", "function", fn, "name", canon)
		return "", false
	}
	c.e.rememberName(name, canon)
	return canon, true
}

func (c *call) headerValue(fn, name, value string) bool {
	if !httpguts.ValidHeaderFieldValue(value) {
		c.logLine(slog.LevelWarn, "wasm: guest gave an invalid header value; ignored", "function", fn, "name", name)
		return false
	}
	return true
}

// refused is what a setter that ignored its arguments returns to a guest that declares a
// result.
const refused = -1

func setRequestHeader(c *call, m api.Module, s []uint64) int32 {
	name, b := read(m, s[0], s[1]), read(m, s[2], s[3])
	if c.response {
		return refused
	}
	c.spendHeaderBytes("conduit_set_request_header", len(name)+len(b))
	value := string(b)
	canon, ok := c.headerName("conduit_set_request_header", name)
	if !ok || !c.headerValue("conduit_set_request_header", canon, value) {
		return refused
	}
	c.reqOps = append(c.reqOps, hdrOp{name: canon, value: value})
	return 0
}

func removeRequestHeader(c *call, m api.Module, s []uint64) int32 {
	name := read(m, s[0], s[1])
	if c.response {
		return refused
	}
	c.spendHeaderBytes("conduit_remove_request_header", len(name))
	canon, ok := c.headerName("conduit_remove_request_header", name)
	if !ok {
		return refused
	}
	c.reqOps = append(c.reqOps, hdrOp{name: canon, remove: true})
	return 0
}

// clampStatus keeps a guest's status within 100–999.
func clampStatus(v int32) int { return int(min(max(v, 100), 999)) }

func setResponseStatus(c *call, _ api.Module, s []uint64) int32 {
	if c.response {
		return refused
	}
	c.abortStatus = clampStatus(api.DecodeI32(s[0]))
	return 0
}

func setResponseHeader(c *call, m api.Module, s []uint64) int32 {
	name, b := read(m, s[0], s[1]), read(m, s[2], s[3])
	c.spendHeaderBytes("conduit_set_response_header", len(name)+len(b))
	value := string(b)
	canon, ok := c.headerName("conduit_set_response_header", name)
	if !ok || !c.headerValue("conduit_set_response_header", canon, value) {
		return refused
	}
	if c.response {
		c.hdr[canon] = []string{value}
		return 0
	}
	if c.abortHdr == nil {
		c.abortHdr = http.Header{}
	}
	c.abortHdr[canon] = []string{value}
	return 0
}

func setResponseBody(c *call, m api.Module, s []uint64) int32 {
	b := read(m, s[0], s[1])
	if c.bodyIgnored {
		return refused
	}
	c.body = append(c.body[:0], b...)
	c.bodySet = true
	return 0
}

func abortWithRedirect(c *call, m api.Module, s []uint64) int32 {
	loc := readString(m, s[0], s[1])
	if c.response {
		return refused
	}
	if loc == "" || !httpguts.ValidHeaderFieldValue(loc) {
		c.logLine(slog.LevelWarn, "wasm: guest gave an invalid redirect location; ignored", "location", quoteInput(loc))
		return refused
	}
	c.redirect, c.redirected = loc, true
	return 0
}

func getResponseHeader(c *call, m api.Module, s []uint64) int32 {
	name := readString(m, s[0], s[1])
	if !c.response {
		return absent
	}
	vv := c.hdr[http.CanonicalHeaderKey(name)]
	if len(vv) == 0 {
		return absent
	}
	return c.putAt(m, s[2], s[3], vv[0])
}

func removeResponseHeader(c *call, m api.Module, s []uint64) int32 {
	name := read(m, s[0], s[1])
	if !c.response {
		return refused
	}
	c.spendHeaderBytes("conduit_remove_response_header", len(name))
	canon, ok := c.headerName("conduit_remove_response_header", name)
	if !ok {
		return refused
	}
	delete(c.hdr, canon)
	return 0
}

// guestLevels maps conduit_log's levels 0 (trace) … 4 (error) to slog levels.
var guestLevels = [...]slog.Level{slog.LevelDebug - 4, slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError}

func guestLog(c *call, m api.Module, s []uint64) int32 {
	level := api.DecodeI32(s[0])
	msg := read(m, s[1], s[2])
	if len(msg) > maxLogBytes {
		msg = msg[:maxLogBytes]
	}
	l := guestLevels[min(max(level, 0), int32(len(guestLevels)-1))]
	c.logLine(l, "wasm guest: "+strings.ToValidUTF8(string(msg), "\uFFFD"), "guest", c.e.spec.file)
	return 0
}
