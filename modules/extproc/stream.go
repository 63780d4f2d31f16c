package extproc

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	filterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	procv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/modules/envoyext"
)

// stream is one request's ext_proc stream.
type stream struct {
	p      *Processor
	cl     grpc.BidiStreamingClient[procv3.ProcessingRequest, procv3.ProcessingResponse]
	cancel func()
	sent   bool // a message went out: the protocol configuration was sent
}

// exchange sends req and waits up to timeoutMs for the answer; a late answer ends the
// stream (errTimeout).
func (s *stream) exchange(req *procv3.ProcessingRequest) (*procv3.ProcessingResponse, error) {
	if !s.sent {
		// Bodies are never sent; the service learns it from the first message, as from Envoy.
		req.ProtocolConfig = &procv3.ProtocolConfiguration{
			RequestBodyMode: filterv3.ProcessingMode_NONE, ResponseBodyMode: filterv3.ProcessingMode_NONE,
		}
		s.sent = true
	}
	if err := s.cl.Send(req); err != nil {
		return nil, fmt.Errorf("sending to the processing service: %w", err)
	}
	t := time.AfterFunc(s.p.timeout, s.cancel)
	resp, err := s.cl.Recv()
	if !t.Stop() {
		return nil, errTimeout // the timer ran: the stream is cancelled
	}
	if err != nil {
		return nil, fmt.Errorf("receiving from the processing service: %w", err)
	}
	return resp, nil
}

// requestHeaders runs the request headers phase. done reports that the service answered
// the client itself (an immediate response was written).
func (s *stream) requestHeaders(w http.ResponseWriter, r *http.Request) (done bool, err error) {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	hm := headerMap(r.Header, 4, ":authority", r.Host, ":method", r.Method, ":path", r.URL.RequestURI(), ":scheme", scheme)
	eos := r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0
	resp, err := s.exchange(&procv3.ProcessingRequest{Request: &procv3.ProcessingRequest_RequestHeaders{
		RequestHeaders: &procv3.HttpHeaders{Headers: hm, EndOfStream: eos},
	}})
	if err != nil {
		return false, err
	}
	switch v := resp.GetResponse().(type) {
	case *procv3.ProcessingResponse_RequestHeaders:
		set, remove, err := mutations(v.RequestHeaders.GetResponse(), envoyext.Upstream)
		if err != nil {
			return false, err
		}
		envoyext.Apply(r.Header, set)
		for _, n := range remove {
			delete(r.Header, n)
		}
		names := make([]string, 0, len(set)+len(remove))
		for _, m := range set {
			names = append(names, m.Name)
		}
		envoyext.GuardTrailers(r, append(names, remove...))
		return false, nil
	case *procv3.ProcessingResponse_ImmediateResponse:
		return true, s.immediate(w, r, v.ImmediateResponse, nil)
	}
	return false, fmt.Errorf("the processing service answered the request headers with %T", resp.GetResponse())
}

// responseHeaders runs the response headers phase on the header about to be sent with
// status. replaced reports that an immediate response was written instead.
func (s *stream) responseHeaders(w http.ResponseWriter, r *http.Request, status int, keep map[string]bool) (replaced bool, err error) {
	hm := headerMap(w.Header(), 1, ":status", strconv.Itoa(status))
	resp, err := s.exchange(&procv3.ProcessingRequest{Request: &procv3.ProcessingRequest_ResponseHeaders{
		ResponseHeaders: &procv3.HttpHeaders{Headers: hm},
	}})
	if err != nil {
		return false, err
	}
	switch v := resp.GetResponse().(type) {
	case *procv3.ProcessingResponse_ResponseHeaders:
		set, remove, err := mutations(v.ResponseHeaders.GetResponse(), envoyext.Client)
		if err != nil {
			return false, err
		}
		envoyext.Apply(w.Header(), set)
		for _, n := range remove {
			delete(w.Header(), n)
		}
		return false, nil
	case *procv3.ProcessingResponse_ImmediateResponse:
		return true, s.immediate(w, r, v.ImmediateResponse, keep)
	}
	return false, fmt.Errorf("the processing service answered the response headers with %T", resp.GetResponse())
}

// immediate writes the service's own answer. In the response phase the handler's headers are
// dropped first, except keep (those set before extProc ran).
func (s *stream) immediate(w http.ResponseWriter, r *http.Request, ir *procv3.ImmediateResponse, keep map[string]bool) error {
	set, remove, err := headerMutation(ir.GetHeaders(), envoyext.Client)
	if err != nil {
		return err
	}
	h := w.Header()
	if keep != nil {
		for k := range h {
			if !keep[k] {
				delete(h, k)
			}
		}
	}
	for _, n := range remove {
		delete(h, n)
	}
	def := s.p.statusOnError
	if def == 0 {
		def = http.StatusInternalServerError
	}
	envoyext.WriteLocal(w, r, envoyext.ReplyStatus(int32(ir.GetStatus().GetCode()), def), set, string(ir.GetBody()))
	return nil
}

// mutations reads a CommonResponse. Body mutations need a body phase, which this module
// does not have: one is an error, never silently dropped.
func mutations(c *procv3.CommonResponse, side envoyext.Side) (set []envoyext.Mutation, remove []string, err error) {
	if c == nil {
		return nil, nil, nil
	}
	if c.GetBodyMutation() != nil {
		return nil, nil, fmt.Errorf("the processing service sent a body mutation, but bodies are not processed")
	}
	return headerMutation(c.GetHeaderMutation(), side)
}

// headerMutation parses set_headers and remove_headers (names the gateway owns are skipped).
func headerMutation(m *procv3.HeaderMutation, side envoyext.Side) (set []envoyext.Mutation, remove []string, err error) {
	if m == nil {
		return nil, nil, nil
	}
	if set, err = envoyext.ParseMutations(m.GetSetHeaders(), side); err != nil {
		return nil, nil, err
	}
	remove, err = envoyext.ParseNames(m.GetRemoveHeaders(), side)
	return set, remove, err
}

// headerMap lists h (names lower-cased, each value its own entry, in raw_value as Envoy
// sends them) after the pseudo-headers given as name, value pairs.
func headerMap(h http.Header, npseudo int, pseudo ...string) *corev3.HeaderMap {
	n := npseudo
	for _, vv := range h {
		n += len(vv)
	}
	out := make([]*corev3.HeaderValue, 0, n)
	for i := 0; i+1 < len(pseudo); i += 2 {
		out = append(out, &corev3.HeaderValue{Key: pseudo[i], RawValue: []byte(pseudo[i+1])})
	}
	for k, vv := range h {
		lk := strings.ToLower(k)
		for _, v := range vv {
			out = append(out, &corev3.HeaderValue{Key: lk, RawValue: []byte(v)})
		}
	}
	return &corev3.HeaderMap{Headers: out}
}

// Where the response phase stands.
const (
	pending  = iota // no header written yet
	passing         // the (processed) response is being written
	replaced        // an immediate response or an error answer was written: writes are dropped
)

// responseWriter holds back the response header until the service has processed it.
type responseWriter struct {
	http.ResponseWriter
	s     *stream
	r     *http.Request
	keep  map[string]bool // response header names set before extProc ran
	state int
}

// WriteHeader implements http.ResponseWriter: a final status runs the response phase.
func (rw *responseWriter) WriteHeader(code int) {
	if rw.state != pending {
		if rw.state == passing {
			rw.ResponseWriter.WriteHeader(code)
		}
		return
	}
	if code < 200 {
		// 1xx interim answers go out as they are; so does 101, after which the connection
		// is no longer HTTP (docs/extproc.md).
		if code == http.StatusSwitchingProtocols {
			rw.state = passing
		}
		rw.ResponseWriter.WriteHeader(code)
		return
	}
	p := rw.s.p
	replacedBy, err := rw.s.responseHeaders(rw.ResponseWriter, rw.r, code, rw.keep)
	switch {
	case err != nil && p.failOpen:
		p.count(p.failAllowed)
		p.log.Warn("processing service failed on the response; sending it unprocessed (failureModeAllow)", err)
	case err != nil:
		p.count(p.failed)
		p.log.Warn("processing service failed on the response; answering with an error (fail closed)", err)
		h := rw.ResponseWriter.Header()
		for k := range h {
			if !rw.keep[k] {
				delete(h, k)
			}
		}
		core.Error(rw.ResponseWriter, rw.r, p.errorStatus(err), "")
		rw.state = replaced
		return
	case replacedBy:
		rw.state = replaced
		return
	}
	rw.state = passing
	rw.ResponseWriter.WriteHeader(code)
}

// Write implements http.ResponseWriter.
func (rw *responseWriter) Write(b []byte) (int, error) {
	if rw.state == pending {
		rw.WriteHeader(http.StatusOK)
	}
	if rw.state == replaced {
		return len(b), nil
	}
	return rw.ResponseWriter.Write(b)
}

// Flush implements http.Flusher.
func (rw *responseWriter) Flush() {
	if rw.state == pending {
		rw.WriteHeader(http.StatusOK)
	}
	if rw.state == passing {
		_ = http.NewResponseController(rw.ResponseWriter).Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (rw *responseWriter) Unwrap() http.ResponseWriter { return rw.ResponseWriter }
