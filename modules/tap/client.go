package tap

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/conduitproxy/conduit/core/cli"
)

// maxLine bounds one NDJSON line read by the CLI (16 headers × 2 × 1 KiB fit easily).
const maxLine = 1 << 20

// stream is an open GET /tap as the CLI reads it.
type stream struct {
	body io.ReadCloser
	sc   *bufio.Scanner
}

// openStream opens GET /tap?q on the Admin API the flags name. The request ends with ctx.
func openStream(ctx context.Context, env *cli.Env, af *cli.AdminFlags, q url.Values) (*stream, error) {
	c := af.Client(env)
	u := c.Base + "/tap"
	if enc := q.Encode(); enc != "" {
		u += "?" + enc
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("tap: %w", err)
	}
	req.Header.Set("Accept", "application/x-ndjson")
	if err := c.Authorize(req); err != nil {
		return nil, err
	}
	// No overall timeout: the stream has no end. Connecting and the answer's header are
	// bounded.
	hc := &http.Client{Transport: &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		ResponseHeaderTimeout: 10 * time.Second,
		DisableCompression:    true,
	}}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("admin API unreachable at %s: %w", c.Base, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		switch resp.StatusCode {
		case http.StatusUnauthorized:
			return nil, fmt.Errorf("admin API: 401 unauthorized (set CONDUIT_ADMIN_TOKEN)")
		case http.StatusNotFound:
			return nil, fmt.Errorf("admin API: GET /tap not found (is feature \"tap\" compiled in and does the config have sites?)")
		}
		var e struct {
			Message string `json:"message"`
		}
		_ = json.Unmarshal(raw, &e)
		if e.Message == "" {
			e.Message = strings.TrimSpace(string(raw))
		}
		return nil, fmt.Errorf("admin API: %d: %s", resp.StatusCode, e.Message)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	return &stream{body: resp.Body, sc: sc}, nil
}

// next returns the next line and its decoded form. io.EOF means the server ended the stream.
func (s *stream) next() ([]byte, *EventJSON, error) {
	for s.sc.Scan() {
		line := s.sc.Bytes()
		if len(line) == 0 {
			continue
		}
		var ev EventJSON
		if err := json.Unmarshal(line, &ev); err != nil {
			return nil, nil, fmt.Errorf("tap: bad line from the server: %w", err)
		}
		return line, &ev, nil
	}
	if err := s.sc.Err(); err != nil {
		return nil, nil, err
	}
	return nil, nil, io.EOF
}

// Close ends the stream.
func (s *stream) Close() error { return s.body.Close() }
