package tap

import (
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"unicode"
)

func TestParseFilter(t *testing.T) {
	tests := []struct {
		query   string
		want    *Filter
		wantErr string
	}{
		{"", &Filter{}, ""},
		{"site=API.example.com:443,*&route=/api&route=routes[0]", &Filter{Sites: []string{"api.example.com:443", "*"}, Routes: []string{"/api", "routes[0]"}}, ""},
		{"path=/a,/b&method=get,Post", &Filter{Paths: []string{"/a", "/b"}, Methods: []string{"GET", "POST"}}, ""},
		{"status=5xx,404,2XX", &Filter{Statuses: []int{5, 404, 2}}, ""},
		{"header=x-request-id,user-agent&header=X-Request-Id", &Filter{Headers: []string{"X-Request-Id", "User-Agent"}}, ""},
		{"status=6xx", nil, `status "6xx"`},
		{"status=600", nil, `status "600"`},
		{"status=0404", nil, `status "0404"`},
		{"status=abc", nil, `status "abc"`},
		{"path=api", nil, "must start with /"},
		{"method=G%20T", nil, "not a valid method"},
		{"header=bad%20name", nil, "not a valid header name"},
		{"header=" + strings.Repeat("h,", 0) + "a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q", nil, "at most 16 names"},
		{"route=" + strings.Repeat("r,", 33), nil, "at most 32 values"},
		{"sites=x", nil, `unknown parameter "sites"`},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			q, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseFilter(q)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestFilterMatch(t *testing.T) {
	ev := &Event{Site: "api.example.com:8080", Method: "GET", Path: "/api/users", Status: 503, Route: "/api"}
	noRoute := &Event{Site: "*:8080", Method: "POST", Path: "/x", Status: 404}
	tests := []struct {
		query     string
		ev, other bool // matches ev, matches noRoute
	}{
		{"", true, true},
		{"site=api.example.com:8080", true, false},
		{"site=api.example.com", true, false},
		{"site=*", false, true},
		{"site=*:8080", false, true},
		{"site=*:9090", false, false},
		{"site=api.example.com:8080,*:8080", true, true},
		{"site=api.example.com:9090", false, false},
		{"route=/api", true, false},
		{"route=-", false, true},
		{"route=/ap", false, false},
		{"path=/api", true, false},
		{"path=/ap", true, false}, // plain prefix, as documented
		{"path=/api/users/x", false, false},
		{"path=/x,/api", true, true},
		{"method=GET", true, false},
		{"method=post", false, true},
		{"status=5xx", true, false},
		{"status=4xx", false, true},
		{"status=503", true, false},
		{"status=500", false, false},
		{"status=2xx,404", false, true},
		{"method=GET&status=4xx", false, false},
		{"method=GET&status=5xx&path=/api&route=/api&site=api.example.com", true, false},
	}
	for _, tt := range tests {
		q, _ := url.ParseQuery(tt.query)
		f, err := ParseFilter(q)
		if err != nil {
			t.Fatalf("%s: %v", tt.query, err)
		}
		if got := f.Match(ev); got != tt.ev {
			t.Errorf("%q on ev: %v, want %v", tt.query, got, tt.ev)
		}
		if got := f.Match(noRoute); got != tt.other {
			t.Errorf("%q on noRoute: %v, want %v", tt.query, got, tt.other)
		}
	}
}

func TestHeaderValue(t *testing.T) {
	h := http.Header{
		"Authorization": {"Bearer secret"}, "Cookie": {"s=1"}, "Set-Cookie": {"a=1", "b=2"},
		"Proxy-Authorization": {"Basic x"}, "Accept": {"a", "b"}, "Long": {strings.Repeat("x", 5000)},
		"User-Agent": {"curl/8"},
	}
	tests := map[string]string{
		"Authorization": Redacted, "Cookie": Redacted, "Set-Cookie": Redacted, "Proxy-Authorization": Redacted,
		"Accept": "a, b", "User-Agent": "curl/8", "Missing": "", "Long": strings.Repeat("x", MaxHeaderValue),
	}
	for name, want := range tests {
		if got := headerValue(h, name); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
}

func TestBrokerLimitsAndUnion(t *testing.T) {
	b := newBroker()
	var subs []*subscriber
	for i := 0; i < MaxSubscribers; i++ {
		s, err := b.subscribe(&Filter{Headers: []string{"A", "B"}[:1+i%2]})
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, s)
	}
	if _, err := b.subscribe(&Filter{}); err != errTooMany {
		t.Fatalf("past the limit: %v", err)
	}
	if got := b.snap.Load().headers; !reflect.DeepEqual(got, []string{"A", "B"}) {
		t.Fatalf("header union %v", got)
	}
	if b.subscribers() != MaxSubscribers {
		t.Fatalf("subscribers %d", b.subscribers())
	}
	for _, s := range subs {
		b.unsubscribe(s)
	}
	b.unsubscribe(subs[0]) // twice is harmless
	if b.subscribers() != 0 || len(b.snap.Load().headers) != 0 {
		t.Fatalf("after unsubscribing: %d %v", b.subscribers(), b.snap.Load().headers)
	}
}

func TestPublishDropsWhenFull(t *testing.T) {
	b := newBroker()
	b.queue = 2
	all, _ := b.subscribe(&Filter{})
	only5xx, _ := b.subscribe(&Filter{Statuses: []int{5}})
	sn := b.snap.Load()
	for i := 0; i < 5; i++ {
		sn.publish(&Event{Status: 200})
	}
	sn.publish(&Event{Status: 502})
	if len(all.ch) != 2 || all.dropped.Load() != 4 || all.lost.Load() != 4 {
		t.Fatalf("all: queued %d dropped %d", len(all.ch), all.dropped.Load())
	}
	if len(only5xx.ch) != 1 || only5xx.dropped.Load() != 0 {
		t.Fatalf("5xx: queued %d dropped %d", len(only5xx.ch), only5xx.dropped.Load())
	}
	b.closeAll()
	select {
	case <-all.stop:
	default:
		t.Fatal("closeAll did not stop the subscriber")
	}
}

func TestClean(t *testing.T) {
	tests := map[string]string{
		"/plain/path":         "/plain/path",
		"/a\x1b[31mred":       `/a\x1b[31mred`,
		"line\nbreak\r":       `line\x0abreak\x0d`,
		"c1\u009b31m":         `c1\u009b31m`,
		"ünïcode ok":          "ünïcode ok",
		"del\x7f":             `del\x7f`,
		"tab\tis escaped too": `tab\x09is escaped too`,
	}
	for in, want := range tests {
		if got := clean(in); got != want {
			t.Errorf("clean(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{"", "status=5xx", "site=*&route=-", "header=X-A,b&method=get", "path=/a,/b", "status=404,2xx"} {
		f.Add(s, "GET", "/api/x", 503)
	}
	f.Fuzz(func(t *testing.T, query, method, path string, status int) {
		q, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		flt, err := ParseFilter(q)
		if err != nil {
			return
		}
		if len(flt.Headers) > MaxHeaders {
			t.Fatalf("%d headers", len(flt.Headers))
		}
		for _, m := range flt.Methods {
			if !validToken(m) || strings.ToUpper(m) != m {
				t.Fatalf("method %q", m)
			}
		}
		for _, s := range flt.Statuses {
			if !(s >= 1 && s <= 5) && !(s >= 100 && s <= 599) {
				t.Fatalf("status %d", s)
			}
		}
		for _, p := range flt.Paths {
			if !strings.HasPrefix(p, "/") {
				t.Fatalf("path %q", p)
			}
		}
		// An empty filter matches everything; Match never panics.
		ev := &Event{Method: method, Path: path, Status: status}
		_ = flt.Match(ev)
		if (&Filter{}).Match(ev) != true {
			t.Fatal("empty filter refused an event")
		}
	})
}

func FuzzClean(f *testing.F) {
	for _, s := range []string{"", "/a", "\x1b[2J", "\u009b", "é\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := clean(s)
		for _, r := range out {
			if unicode.IsControl(r) {
				t.Fatalf("clean(%q) = %q keeps a control character", s, out)
			}
		}
	})
}
