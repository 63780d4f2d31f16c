package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/router"
)

// route is one proxy route: its upstreams, path handling and settings. ServeHTTP is the
// proxy's hot path.
type route struct {
	name        string
	site        *siteSettings
	bal         balancer
	stripPrefix string // "" when stripPrefix is off
	rewrite     []*RewriteRule
	websocket   bool
	hooks       *core.SiteHooks
}

func newRoute(ctx *core.SiteContext, ss *siteSettings, rc *RouteConfig, matchPrefix, name string) (*route, error) {
	ts := transportSettings{
		connect:     defaultConnectTimeout,
		firstByte:   defaultReadTimeout,
		maxIdle:     defaultMaxIdlePerHost,
		idleTimeout: defaultIdleTimeout,
		http2:       rc.HTTP2,
		verify:      true,
	}
	if t := rc.Timeout; t != nil {
		if t.ConnectMs != nil {
			ts.connect = ms(*t.ConnectMs)
		}
		if t.ReadMs != nil {
			ts.firstByte = ms(*t.ReadMs)
		}
		if t.FirstByteMs != nil {
			ts.firstByte = ms(*t.FirstByteMs)
		}
	}
	if p := rc.Pool; p != nil {
		if p.MaxIdle != nil {
			ts.maxIdle = int(*p.MaxIdle)
			if ts.maxIdle == 0 {
				ts.maxIdle = -1 // keep-alive to upstreams off
			}
		}
		if p.IdleTimeoutSecs != nil {
			ts.idleTimeout = time.Duration(*p.IdleTimeoutSecs) * time.Second
		}
	}
	if u := rc.UpstreamTLS; u != nil {
		if u.Verify != nil {
			ts.verify = *u.Verify
		}
		ts.serverName = u.ServerName
	}
	rt := &route{name: name, site: ss, rewrite: rc.Rewrite, websocket: rc.Websocket, hooks: ctx.Hooks()}
	if rc.StripPrefix && matchPrefix != "/" {
		rt.stripPrefix = matchPrefix
	}
	var ups []*upstream
	for _, t := range rc.Targets {
		u, err := url.Parse(t.URL)
		if err != nil {
			return nil, err
		}
		ts := ts
		if u.Scheme == "http" && rc.HTTP2 {
			ts.h2c = true
		}
		tr := ctx.Shared.Get(ts.key(), func() any { return newTransport(ts) }).(*http.Transport)
		ups = append(ups, &upstream{url: u, weight: max(t.Weight, 1), self: isSelf(u, []int{ctx.Site.Port}), transport: tr, label: t.URL})
	}
	rt.bal = newBalancer(rc.Strategy, ups)
	return rt, nil
}

func ms(n uint64) time.Duration { return time.Duration(n) * time.Millisecond }

// maxViaHops bounds how many Conduit hops a request may already have passed; beyond it the
// request is treated as a loop (421).
const maxViaHops = 8

var bufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// ServeHTTP proxies r to an upstream.
func (rt *route) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	st := core.State(r)
	if st != nil && st.Route == "" {
		st.Route = rt.name
	}
	upType, upgrade := isUpgrade(r.Header)
	if upgrade && !rt.websocket {
		core.Error(w, r, http.StatusBadGateway, "protocol upgrade not enabled for this route (websocket: true)")
		return
	}
	if nominatesProtected(r.Header) {
		core.Error(w, r, http.StatusBadRequest, "Connection header nominates a protected header")
		return
	}
	if viaHops(r.Header) >= maxViaHops {
		core.Error(w, r, http.StatusMisdirectedRequest, "proxy loop detected")
		return
	}
	up := rt.bal.pick(r)
	if up.self {
		core.Error(w, r, http.StatusMisdirectedRequest, "upstream is this Conduit (proxy loop)")
		return
	}

	outURL := rt.upstreamURL(up, r)
	outHeader := rt.upstreamHeader(r, st, upgrade, upType)
	body := r.Body
	if r.ContentLength == 0 && len(r.TransferEncoding) == 0 {
		body = nil
	}
	base := r.Context()
	if st != nil {
		base = st.Base()
	}
	ctx := base
	var trace *httptrace.ClientTrace
	if !upgrade {
		trace = &httptrace.ClientTrace{Got1xxResponse: func(code int, header textproto.MIMEHeader) error {
			if code == http.StatusSwitchingProtocols {
				return nil
			}
			h := w.Header()
			for k, vv := range header {
				h[k] = vv
			}
			w.WriteHeader(code)
			for k := range header {
				delete(h, k)
			}
			return nil
		}}
		ctx = httptrace.WithClientTrace(ctx, trace)
	}
	outreq := (&http.Request{
		Method:        r.Method,
		URL:           outURL,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        outHeader,
		Body:          body,
		ContentLength: r.ContentLength,
		Host:          r.Host,
		Trailer:       r.Trailer,
	}).WithContext(ctx)
	if outreq.ContentLength < 0 {
		outreq.ContentLength = -1
	}

	start := time.Now()
	resp, err := up.transport.RoundTrip(outreq)
	if st != nil {
		st.Upstream = up.label
	}
	if rt.hooks.HasAttemptObservers() {
		a := core.UpstreamAttempt{Route: rt.name, Upstream: up.label, Err: err, Start: start, Duration: time.Since(start)}
		if resp != nil {
			a.Status = resp.StatusCode
		}
		rt.hooks.Attempt(r, &a)
	}
	if err != nil {
		if st != nil {
			st.UpstreamDuration += time.Since(start)
		}
		rt.upstreamError(w, r, err)
		return
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		rt.switchProtocols(w, r, resp, upType)
		return
	}
	defer resp.Body.Close()
	rt.writeResponse(w, r, resp)
	if st != nil {
		st.UpstreamDuration += time.Since(start)
	}
}

// upstreamURL builds the outbound URL: the target's scheme and host, the target's base path
// joined with the (stripped, rewritten) request path, and the query.
func (rt *route) upstreamURL(up *upstream, r *http.Request) *url.URL {
	path, rawPath := r.URL.Path, r.URL.RawPath
	query := r.URL.RawQuery
	if rt.stripPrefix != "" {
		path = router.StripPrefix(path, rt.stripPrefix)
		if rawPath != "" {
			if router.HasPathPrefix(rawPath, rt.stripPrefix) {
				rawPath = router.StripPrefix(rawPath, rt.stripPrefix)
			} else {
				rawPath = ""
			}
		}
	}
	for _, rw := range rt.rewrite {
		if rw.re != nil && rw.re.MatchString(path) {
			path = rw.re.ReplaceAllString(path, rw.To)
			rawPath = ""
			if p, q, ok := strings.Cut(path, "?"); ok {
				path = p
				if query != "" {
					query = q + "&" + query
				} else {
					query = q
				}
			}
			break
		}
	}
	u := &url.URL{Scheme: up.url.Scheme, Host: up.url.Host, RawQuery: query}
	if bp := up.url.Path; bp != "" && bp != "/" {
		u.Path = joinPath(bp, path)
		if rawPath != "" {
			u.RawPath = joinPath(up.url.EscapedPath(), rawPath)
		}
	} else {
		u.Path, u.RawPath = path, rawPath
	}
	return u
}

func joinPath(a, b string) string {
	as, bs := strings.HasSuffix(a, "/"), strings.HasPrefix(b, "/")
	switch {
	case as && bs:
		return a + b[1:]
	case !as && !bs:
		return a + "/" + b
	}
	return a + b
}

// upstreamHeader copies the client's headers without hop-by-hop fields and adds the
// forwarding headers.
func (rt *route) upstreamHeader(r *http.Request, st *core.RequestState, upgrade bool, upType string) http.Header {
	in := r.Header
	out := make(http.Header, len(in)+4)
	for k, vv := range in {
		if isHopHeader(k) || k == "Expect" {
			continue
		}
		out[k] = vv
	}
	eachConnectionToken(in, func(name string) bool {
		delete(out, name)
		return true
	})
	if te := in["Te"]; len(te) > 0 {
		// gRPC and others rely on "TE: trailers"; it is the one TE value forwarded.
		for _, v := range te {
			if strings.EqualFold(textproto.TrimString(v), "trailers") {
				out["Te"] = []string{"trailers"}
			}
		}
	}
	if upgrade {
		out["Connection"] = []string{"Upgrade"}
		out["Upgrade"] = []string{upType}
	}
	if ip := clientIP(r); ip != "" {
		if prior, ok := in["X-Forwarded-For"]; ok && len(prior) > 0 {
			out["X-Forwarded-For"] = []string{strings.Join(prior, ", ") + ", " + ip}
		} else {
			out["X-Forwarded-For"] = []string{ip}
		}
	}
	if rt.site.site != nil && rt.site.site.TLS || r.TLS != nil {
		out["X-Forwarded-Proto"] = protoHTTPS
	} else {
		out["X-Forwarded-Proto"] = protoHTTP
	}
	out["X-Forwarded-Host"] = []string{r.Host}
	via := viaFor(r)
	if prior, ok := in["Via"]; ok && len(prior) > 0 {
		out["Via"] = []string{strings.Join(prior, ", ") + ", " + via}
	} else {
		out["Via"] = []string{via}
	}
	if _, ok := out["User-Agent"]; !ok {
		// Keep Go's transport from adding its own User-Agent.
		out["User-Agent"] = emptyValue
	}
	if tr := rt.site.requestTransform; tr != nil {
		var claims map[string]any
		if st != nil {
			claims = st.Claims
		}
		tr.apply(out, claims)
	}
	return out
}

var (
	protoHTTPS = []string{"https"}
	protoHTTP  = []string{"http"}
	emptyValue = []string{""}
	via11      = "1.1 conduit"
	via20      = "2.0 conduit"
)

func viaFor(r *http.Request) string {
	if r.ProtoMajor == 2 {
		return via20
	}
	if r.ProtoMajor == 1 && r.ProtoMinor == 0 {
		return "1.0 conduit"
	}
	return via11
}

// viaHops counts the Conduit entries in Via.
func viaHops(h http.Header) int {
	n := 0
	for _, v := range h["Via"] {
		n += strings.Count(v, " conduit")
	}
	return n
}

// clientIP is the TCP peer address without port.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return ""
	}
	return host
}

// writeResponse copies the upstream response to the client, streaming the body.
func (rt *route) writeResponse(w http.ResponseWriter, r *http.Request, resp *http.Response) {
	dst := w.Header()
	eachConnectionToken(resp.Header, func(name string) bool {
		resp.Header.Del(name)
		return true
	})
	for k, vv := range resp.Header {
		if isHopHeader(k) || k == "Server" {
			continue
		}
		dst[k] = vv
	}
	if len(resp.Trailer) > 0 {
		names := make([]string, 0, len(resp.Trailer))
		for k := range resp.Trailer {
			names = append(names, k)
		}
		dst["Trailer"] = []string{strings.Join(names, ", ")}
	}
	if tr := rt.site.responseTransform; tr != nil {
		tr.apply(dst, nil)
	}
	if rt.site.maskErrors && resp.StatusCode >= 500 {
		for k := range dst {
			if k != "X-Request-Id" && k != "Vary" {
				delete(dst, k)
			}
		}
		dst["Content-Type"] = []string{"application/json"}
		dst["Content-Length"] = []string{strconv.Itoa(len(maskedBody))}
		w.WriteHeader(resp.StatusCode)
		if r.Method != http.MethodHead {
			_, _ = io.WriteString(w, maskedBody)
		}
		return
	}
	w.WriteHeader(resp.StatusCode)
	if err := copyBody(w, resp.Body, resp.ContentLength == -1); err != nil {
		if errors.Is(err, errClientWrite) {
			return // the client went away; nothing left to tell it
		}
		// The upstream failed mid-body: abort so the client sees a broken response rather
		// than a clean but truncated one.
		panic(http.ErrAbortHandler)
	}
	for k, vv := range resp.Trailer {
		dst[http.TrailerPrefix+k] = vv
	}
}

var errClientWrite = errors.New("write to client failed")

// copyBody streams src to w with a pooled buffer, flushing after every read when the
// response is streamed (no Content-Length: SSE, chunked APIs).
func copyBody(w http.ResponseWriter, src io.Reader, flush bool) error {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	var rc *http.ResponseController
	if flush {
		rc = http.NewResponseController(w)
	}
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return errClientWrite
			}
			if rc != nil {
				if err := rc.Flush(); err != nil {
					return errClientWrite
				}
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// upstreamError answers a failed upstream attempt: 504 for timeouts, 502 otherwise, nothing
// when the client itself went away.
func (rt *route) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		if st := core.State(r); st != nil {
			st.Writer.Status = 499 // client closed request (nginx's code), for logs
		}
		return
	}
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		w.Header().Set("Connection", "close")
		core.Error(w, r, http.StatusRequestEntityTooLarge, "")
		return
	}
	status := http.StatusBadGateway
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		status = http.StatusGatewayTimeout
	}
	core.Error(w, r, status, "")
}
