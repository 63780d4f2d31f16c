package http3

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
)

// failingWriter is a stream whose writes fail after the header, as an HTTP/3 stream does
// once its write deadline expired between two DATA frames.
type failingWriter struct {
	*httptest.ResponseRecorder
	err error
}

func (f *failingWriter) Write(b []byte) (int, error) {
	if f.err != nil {
		return 0, f.err
	}
	return f.ResponseRecorder.Write(b)
}

func TestStripHandler(t *testing.T) {
	for _, tc := range []struct {
		name      string
		writeErr  error
		wantAbort bool
	}{
		{name: "complete answer", writeErr: nil, wantAbort: false},
		{name: "write past the send timeout", writeErr: os.ErrDeadlineExceeded, wantAbort: true},
		{name: "a body on a HEAD or 304 is no failure", writeErr: http.ErrBodyNotAllowed, wantAbort: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newStripHandler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Connection", "close")
				w.Header().Set("Keep-Alive", "timeout=5")
				w.Header().Set("X-Kept", "yes")
				w.WriteHeader(http.StatusBadRequest)
				_, _ = w.Write([]byte("body"))
			}))
			fw := &failingWriter{ResponseRecorder: httptest.NewRecorder(), err: tc.writeErr}
			var recovered any
			func() {
				defer func() { recovered = recover() }()
				h.ServeHTTP(fw, httptest.NewRequest(http.MethodGet, "/", nil))
			}()
			if aborted := recovered != nil && errors.Is(recovered.(error), http.ErrAbortHandler); aborted != tc.wantAbort {
				t.Fatalf("recovered %v, want abort %v", recovered, tc.wantAbort)
			}
			hdr := fw.Result().Header
			if hdr.Get("Connection") != "" || hdr.Get("Keep-Alive") != "" || hdr.Get("X-Kept") != "yes" {
				t.Errorf("header sent: %v", hdr)
			}
		})
	}
}
