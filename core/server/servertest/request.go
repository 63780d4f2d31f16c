package servertest

import (
	"io"
	"net/http"
	"testing"
	"time"
)

// Reply is one answer as a test sees it.
type Reply struct {
	Status int
	Header http.Header
	Body   string
}

// client shows a test exactly what the server sent: it follows no redirect, asks for no
// compression (so it decodes none) and gives up after 30 s.
var client = &http.Client{
	Transport:     &http.Transport{DisableCompression: true},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Timeout:       30 * time.Second,
}

// Do sends a body-less request and returns the whole answer. hdr holds header name, value
// pairs; "Host" sets the request's Host. A request that cannot be sent or read fails the
// test, so Do belongs on the test's own goroutine.
func Do(t testing.TB, method, url string, hdr ...string) Reply {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if http.CanonicalHeaderKey(hdr[i]) == "Host" {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, url, err)
	}
	return Reply{Status: resp.StatusCode, Header: resp.Header, Body: string(b)}
}

// Get is Do with the GET method.
func Get(t testing.TB, url string, hdr ...string) Reply {
	t.Helper()
	return Do(t, http.MethodGet, url, hdr...)
}
