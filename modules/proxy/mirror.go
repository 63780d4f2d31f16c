package proxy

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"time"
)

// mirrorTimeout bounds a shadow request.
const mirrorTimeout = 10 * time.Second

// maxMirrorsInFlight bounds concurrent shadow requests; beyond it copies are dropped rather
// than queued, so a slow mirror cannot hurt live traffic.
const maxMirrorsInFlight = 256

// sendMirror fires a copy of r at the route's mirror, with the body when it was buffered
// (docs/configuration.md, "mirror"). Failures are ignored; the answer is discarded.
func (rt *route) sendMirror(r *http.Request, body []byte, bodyOmitted bool) {
	reg := rt.site.registry
	select {
	case reg.mirrorSlots <- struct{}{}:
	default:
		return
	}
	up := rt.mirror
	u := new(url.URL)
	rt.upstreamURL(u, up, r)
	h := r.Header.Clone()
	for _, k := range hopHeaders {
		h.Del(k)
	}
	h.Set("X-Mirrored-From", r.Host)
	if bodyOmitted {
		h.Set("X-Mirror-Body-Omitted", "true")
	}
	method, host := r.Method, r.Host
	go func() {
		defer func() { <-reg.mirrorSlots }()
		ctx, cancel := context.WithTimeout(context.Background(), mirrorTimeout)
		defer cancel()
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
		if err != nil {
			return
		}
		req.Header = h
		req.Host = host
		resp, err := up.transport.RoundTrip(req)
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
	}()
}
