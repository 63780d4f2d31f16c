package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/conduitproxy/conduit/core"
)

// This file copies an upstream's response to the client and answers failed attempts.

// bufPool holds the 32 KiB buffers copyBody streams response bodies with.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// writeResponse copies the upstream response to the client, streaming the body; with
// maskErrors a 5xx is replaced by the masked JSON body.
func (rt *route) writeResponse(w http.ResponseWriter, r *http.Request, resp *http.Response) {
	dst := w.Header()
	copyResponseHeader(dst, resp)
	if tr := rt.site.responseTransform; tr != nil {
		tr.apply(dst, nil)
	}
	if rt.site.maskErrors && resp.StatusCode >= 500 {
		writeMaskedError(w, r, resp.StatusCode)
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
		if responseTrailerAllowed(resp.Header, k) {
			dst[http.TrailerPrefix+k] = vv
		}
	}
}

// copyResponseHeader copies the upstream's header fields into dst, without hop-by-hop
// fields, those its Connection header names, and Server. When the upstream announces
// trailers, dst announces the ones the client may receive and loses Content-Length.
func copyResponseHeader(dst http.Header, resp *http.Response) {
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
			if responseTrailerAllowed(resp.Header, k) {
				names = append(names, k)
			}
		}
		if len(names) > 0 {
			dst["Trailer"] = []string{strings.Join(names, ", ")}
		}
		// Trailers need a chunked HTTP/1.1 response: an HTTP/2 upstream's Content-Length
		// would make the server drop them.
		delete(dst, "Content-Length")
	}
}

// writeMaskedError answers an upstream 5xx under maskErrors: the status stays, the body is
// maskedBody, and of the response's header fields only X-Request-Id and Vary are kept.
func writeMaskedError(w http.ResponseWriter, r *http.Request, status int) {
	if st := core.State(r); st != nil {
		st.MaskedError = true
	}
	dst := w.Header()
	for k := range dst {
		if k != "X-Request-Id" && k != "Vary" {
			delete(dst, k)
		}
	}
	dst["Content-Type"] = []string{"application/json"}
	dst["Content-Length"] = []string{strconv.Itoa(len(maskedBody))}
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = io.WriteString(w, maskedBody)
	}
}

// errClientWrite is copyBody's error when writing to the client failed.
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
// when the client itself went away (408/413 for a client body that broke a limit). It
// returns the status it answered, 0 for none.
func (rt *route) upstreamError(w http.ResponseWriter, r *http.Request, err error) int {
	if errors.Is(err, core.ErrUploadTooSlow) {
		w.Header().Set("Connection", "close")
		core.Error(w, r, http.StatusRequestTimeout, "request body too slow")
		return http.StatusRequestTimeout
	}
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		w.Header().Set("Connection", "close")
		core.Error(w, r, http.StatusRequestEntityTooLarge, "")
		return http.StatusRequestEntityTooLarge
	}
	if r.Context().Err() != nil {
		if st := core.State(r); st != nil {
			st.Writer.Status = 499 // client closed request (nginx's code), for logs
		}
		return 0
	}
	status := http.StatusBadGateway
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		status = http.StatusGatewayTimeout
	}
	core.Error(w, r, status, "")
	return status
}
