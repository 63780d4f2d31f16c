// Package otelcoltest runs a real OpenTelemetry Collector (built by build-otelcol.sh: the
// OTLP receiver and the file exporter, pinned versions) for tests: on free 127.0.0.1 ports,
// in a temporary directory, stopped by PID when the test ends. Spans returns what the
// collector exported, parsed from its OTLP-JSON file.
package otelcoltest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Collector is a running collector.
type Collector struct {
	// GRPCAddr and HTTPAddr are the OTLP receiver's host:port.
	GRPCAddr, HTTPAddr string

	file string
	cmd  *exec.Cmd
	log  *bytes.Buffer
}

// Binary returns the collector binary: $CONDUIT_OTELCOL, else otelcol-test in
// $HOME/.cache/conduit-tools/bin, built there by build-otelcol.sh when missing.
func Binary() (string, error) {
	if p := os.Getenv("CONDUIT_OTELCOL"); p != "" {
		return p, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(home, ".cache", "conduit-tools", "bin", "otelcol-test")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	_, self, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(self), "build-otelcol.sh")
	out, err := exec.Command("bash", script).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("build-otelcol.sh: %v\n%s", err, out)
	}
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("build-otelcol.sh did not produce %s", bin)
	}
	return bin, nil
}

// Start starts a collector or skips the test when none can be built (fails under CI=true).
func Start(t testing.TB) *Collector {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("OpenTelemetry Collector unavailable: %v", err)
		}
		t.Skipf("OpenTelemetry Collector unavailable (run modules/otlp/otelcoltest/build-otelcol.sh): %v", err)
	}
	dir := t.TempDir()
	c := &Collector{GRPCAddr: freeAddr(t), HTTPAddr: freeAddr(t), file: filepath.Join(dir, "spans.jsonl"), log: &bytes.Buffer{}}
	cfg := fmt.Sprintf(`receivers:
  otlp:
    protocols:
      grpc: {endpoint: %q}
      http: {endpoint: %q}
exporters:
  file: {path: %q, flush_interval: 50ms}
service:
  telemetry: {metrics: {level: none}}
  pipelines: {traces: {receivers: [otlp], exporters: [file]}}
`, c.GRPCAddr, c.HTTPAddr, c.file)
	cfgPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	c.cmd = exec.Command(bin, "--config", cfgPath)
	c.cmd.Dir = dir
	c.cmd.Stdout, c.cmd.Stderr = c.log, c.log
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("start collector: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- c.cmd.Wait() }()
	t.Cleanup(func() {
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = c.cmd.Process.Kill()
			<-exited
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for !c.ready() {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("collector exited: %v\n%s", err, c.log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("collector not ready after 30s:\n%s", c.log)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return c
}

func (c *Collector) ready() bool {
	for _, a := range []string{c.GRPCAddr, c.HTTPAddr} {
		conn, err := net.DialTimeout("tcp", a, 200*time.Millisecond)
		if err != nil {
			return false
		}
		conn.Close()
	}
	return true
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Span is one exported span, flattened from OTLP JSON.
type Span struct {
	TraceID, SpanID, ParentSpanID string
	Name                          string
	Kind                          int // 2 server, 3 client
	Start, End                    time.Time
	StatusCode                    int // 2 error
	Attributes                    map[string]any
	Resource                      map[string]any
}

// Spans returns every span exported so far.
func (c *Collector) Spans() ([]Span, error) {
	f, err := os.Open(c.file)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Span
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
	for sc.Scan() {
		var doc otlpJSON
		if err := json.Unmarshal(sc.Bytes(), &doc); err != nil {
			return nil, fmt.Errorf("parse %s: %w", c.file, err)
		}
		for _, rs := range doc.ResourceSpans {
			res := attrMap(rs.Resource.Attributes)
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					out = append(out, Span{
						TraceID: s.TraceID, SpanID: s.SpanID, ParentSpanID: s.ParentSpanID, Name: s.Name, Kind: s.Kind,
						Start: nanos(s.StartTimeUnixNano), End: nanos(s.EndTimeUnixNano), StatusCode: s.Status.Code,
						Attributes: attrMap(s.Attributes), Resource: res,
					})
				}
			}
		}
	}
	return out, sc.Err()
}

// WaitSpans polls until match holds for the exported spans or the deadline passes.
func (c *Collector) WaitSpans(t testing.TB, timeout time.Duration, match func([]Span) bool) []Span {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		spans, err := c.Spans()
		if err != nil {
			t.Fatal(err)
		}
		if match(spans) {
			return spans
		}
		if time.Now().After(deadline) {
			t.Fatalf("collector: spans did not arrive in %v; have %d: %+v\ncollector log:\n%s", timeout, len(spans), spans, c.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type otlpJSON struct {
	ResourceSpans []struct {
		Resource struct {
			Attributes []kv `json:"attributes"`
		} `json:"resource"`
		ScopeSpans []struct {
			Spans []struct {
				TraceID           string `json:"traceId"`
				SpanID            string `json:"spanId"`
				ParentSpanID      string `json:"parentSpanId"`
				Name              string `json:"name"`
				Kind              int    `json:"kind"`
				StartTimeUnixNano string `json:"startTimeUnixNano"`
				EndTimeUnixNano   string `json:"endTimeUnixNano"`
				Attributes        []kv   `json:"attributes"`
				Status            struct {
					Code int `json:"code"`
				} `json:"status"`
			} `json:"spans"`
		} `json:"scopeSpans"`
	} `json:"resourceSpans"`
}

type kv struct {
	Key   string `json:"key"`
	Value struct {
		StringValue *string  `json:"stringValue"`
		IntValue    *string  `json:"intValue"`
		DoubleValue *float64 `json:"doubleValue"`
		BoolValue   *bool    `json:"boolValue"`
	} `json:"value"`
}

func attrMap(list []kv) map[string]any {
	m := map[string]any{}
	for _, a := range list {
		switch v := a.Value; {
		case v.StringValue != nil:
			m[a.Key] = *v.StringValue
		case v.IntValue != nil:
			n, _ := strconv.ParseInt(*v.IntValue, 10, 64)
			m[a.Key] = n
		case v.DoubleValue != nil:
			m[a.Key] = *v.DoubleValue
		case v.BoolValue != nil:
			m[a.Key] = *v.BoolValue
		}
	}
	return m
}

func nanos(s string) time.Time {
	n, _ := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	return time.Unix(0, n)
}
