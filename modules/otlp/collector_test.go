package otlp_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core/server/servertest"
	_ "github.com/conduitproxy/conduit/modules/otlp"
	"github.com/conduitproxy/conduit/modules/otlp/otelcoltest"
	_ "github.com/conduitproxy/conduit/modules/proxy"
)

// TestRealCollector sends traffic through Conduit to a real upstream with a real
// OpenTelemetry Collector receiving the spans (gRPC and OTLP/HTTP), and checks what the
// collector exported: the server span, one client span per upstream attempt, their parent
// links, the traceparent the upstream saw, and the attributes.
func TestRealCollector(t *testing.T) {
	col := otelcoltest.Start(t)
	for _, tc := range []struct{ name, endpoint, protocol string }{
		{"grpc", "http://" + col.GRPCAddr, ""},
		{"http-protobuf", "http://" + col.HTTPAddr, "http/protobuf"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var seen []string
			var calls atomic.Int32
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				seen = append(seen, r.Header.Get("traceparent"))
				mu.Unlock()
				if calls.Add(1) == 1 {
					w.WriteHeader(http.StatusServiceUnavailable) // provoke one retry
					return
				}
				_, _ = io.WriteString(w, "ok")
			}))
			defer up.Close()
			protocol := ""
			if tc.protocol != "" {
				protocol = fmt.Sprintf("\n    protocol: %q", tc.protocol)
			}
			service := "conduit-" + tc.name
			srv := servertest.Start(t, fmt.Sprintf(`
global:
  otlp:
    endpoint: %q
    serviceName: %q
    sampleRate: 1%s
sites:
  - port: 8080
    proxy:
      /api:
        targets: [%q]
        retry: { attempts: 2, conditions: [5xx] }
`, tc.endpoint, service, protocol, up.URL))

			req, _ := http.NewRequest("GET", srv.URL(8080)+"/api/items?x=1", nil)
			req.Header.Set("X-Request-ID", "rid-"+tc.name)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			_ = srv.Shutdown(ctx) // flushes the batch processor

			attempts := int(calls.Load())
			if attempts < 1 {
				t.Fatal("upstream not reached")
			}
			spans := col.WaitSpans(t, 20*time.Second, func(s []otelcoltest.Span) bool {
				n := 0
				for _, sp := range s {
					if sp.Resource["service.name"] == service {
						n++
					}
				}
				return n >= 1+attempts
			})
			var server *otelcoltest.Span
			var clients []otelcoltest.Span
			for i, sp := range spans {
				if sp.Resource["service.name"] != service {
					continue
				}
				switch sp.Kind {
				case 2:
					server = &spans[i]
				case 3:
					clients = append(clients, sp)
				}
			}
			if server == nil {
				t.Fatalf("no server span in %+v", spans)
			}
			if len(clients) != attempts {
				t.Fatalf("%d client spans for %d upstream attempts", len(clients), attempts)
			}
			t.Logf("%s: %d attempt(s), server span %s %s", tc.name, attempts, server.Name, server.SpanID)
			for k, want := range map[string]any{
				"method": "GET", "path": "/api/items", "request_id": "rid-" + tc.name, "upstream_url": up.URL,
				"http.request.method": "GET", "url.path": "/api/items", "http.route": "/api",
				"status": int64(resp.StatusCode), "http.response.status_code": int64(resp.StatusCode),
			} {
				if got := server.Attributes[k]; got != want {
					t.Errorf("server span %s = %v (%T); want %v", k, got, got, want)
				}
			}
			if _, ok := server.Attributes["duration_ms"].(float64); !ok {
				t.Errorf("server span duration_ms = %v", server.Attributes["duration_ms"])
			}
			if server.ParentSpanID != "" {
				t.Errorf("server span has a parent %q without an incoming traceparent", server.ParentSpanID)
			}
			for i, c := range clients {
				if c.TraceID != server.TraceID || c.ParentSpanID != server.SpanID {
					t.Errorf("client span %d: trace %s parent %s; want %s / %s", i, c.TraceID, c.ParentSpanID, server.TraceID, server.SpanID)
				}
				if c.Attributes["upstream_url"] != up.URL || c.Attributes["request_id"] != "rid-"+tc.name {
					t.Errorf("client span %d attributes %v", i, c.Attributes)
				}
				if c.Start.Before(server.Start) || c.End.After(server.End) {
					t.Errorf("client span %d [%v, %v] outside the server span [%v, %v]", i, c.Start, c.End, server.Start, server.End)
				}
			}
			if attempts == 2 {
				first, second := clients[0], clients[1]
				if first.Start.After(second.Start) {
					first, second = second, first
				}
				if first.Attributes["http.response.status_code"] != int64(503) || first.StatusCode != 2 {
					t.Errorf("first attempt: %v status %d", first.Attributes, first.StatusCode)
				}
				if second.Attributes["http.response.status_code"] != int64(200) || second.Attributes["retry"] != true {
					t.Errorf("retry attempt: %v", second.Attributes)
				}
			}
			wantTP := "00-" + server.TraceID + "-" + server.SpanID + "-01"
			mu.Lock()
			defer mu.Unlock()
			for _, tp := range seen {
				if tp != wantTP {
					t.Errorf("upstream saw traceparent %q; want %q", tp, wantTP)
				}
			}
		})
	}
}

// TestErrorStatusAndIncomingParent: a 5xx answer marks the server span as an error, and a
// client's traceparent is continued.
func TestErrorStatusAndIncomingParent(t *testing.T) {
	col := otelcoltest.Start(t)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer up.Close()
	srv := servertest.Start(t, fmt.Sprintf(`
global:
  otlp: { endpoint: %q, serviceName: err-test }
sites:
  - port: 8080
    proxy: %q
`, "http://"+col.GRPCAddr, up.URL))
	req, _ := http.NewRequest("POST", srv.URL(8080)+"/boom", strings.NewReader("x"))
	req.Header.Set("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx)
	spans := col.WaitSpans(t, 20*time.Second, func(s []otelcoltest.Span) bool {
		for _, sp := range s {
			if sp.Resource["service.name"] == "err-test" && sp.Kind == 2 {
				return true
			}
		}
		return false
	})
	for _, sp := range spans {
		if sp.Resource["service.name"] != "err-test" || sp.Kind != 2 {
			continue
		}
		if sp.StatusCode != 2 || sp.TraceID != "0af7651916cd43dd8448eb211c80319c" || sp.ParentSpanID != "b7ad6b7169203331" {
			t.Fatalf("server span: status %d trace %s parent %s", sp.StatusCode, sp.TraceID, sp.ParentSpanID)
		}
		return
	}
}
