package wasm

import (
	"bytes"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	hwapi "github.com/http-wasm/http-wasm-host-go/api"
)

// TestFreedStateIsAContext: the http-wasm library may log with a state after the request
// freed it (a guest's finalizer logs with the context the guest was made with); the freed
// state still answers as a context and the log line is written without the request.
func TestFreedStateIsAContext(t *testing.T) {
	h := &httpWasmEntry{}
	r := httptest.NewRequest("GET", "/", nil)
	s := h.newState(httptest.NewRecorder(), r)
	h.free(s)
	if got := s.Value("other key"); got != nil {
		t.Fatalf("a freed state's Value = %v, want nil", got)
	}
	var out bytes.Buffer
	l := hwLogger{l: slog.New(slog.NewTextHandler(&out, nil)), file: "g.wasm"}
	l.Log(s, hwapi.LogLevelError, "closing failed")
	if !strings.Contains(out.String(), "closing failed") {
		t.Fatalf("log output %q", out.String())
	}
}
