package tap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/textproto"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"

	"github.com/conduitproxy/conduit/core/cli"
)

func init() {
	cli.RegisterCommand(cli.Command{Name: "tap", Summary: "print live request summaries from a running Conduit (GET /tap)", Run: runTap})
	cli.RegisterCommand(cli.Command{Name: "top", Summary: "live per-route and per-upstream req/s, success rate and p50/p99", Run: runTop})
}

// filterFlags are the filters `conduit tap` and `conduit top` pass to GET /tap.
type filterFlags struct {
	site, route, path, method, status, header string
}

func (f *filterFlags) register(fs cli.FlagAdder, headers bool) {
	fs.StringVar(&f.site, "site", "", "only this site (label host:port, a host, or * ); comma-separated list")
	fs.StringVar(&f.route, "route", "", "only this route name (/api, routes[0]; - for none); comma-separated list")
	fs.StringVar(&f.path, "path", "", "only paths starting with this prefix; comma-separated list")
	fs.StringVar(&f.method, "method", "", "only this method; comma-separated list")
	fs.StringVar(&f.status, "status", "", "only this status class (2xx … 5xx) or code; comma-separated list")
	if headers {
		fs.StringVar(&f.header, "header", "", "show this request/response header; comma-separated list")
	}
}

func (f *filterFlags) query() url.Values {
	q := url.Values{}
	for k, v := range map[string]string{"site": f.site, "route": f.route, "path": f.path, "method": f.method, "status": f.status, "header": f.header} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return q
}

// interruptible returns a context cancelled by SIGINT or SIGTERM.
func interruptible() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

func runTap(env *cli.Env, args []string) int {
	var ff filterFlags
	var count int
	af, code, ok := cli.FlagsOnlyAdminCommand(env, "tap", args, func(fs cli.FlagAdder) {
		ff.register(fs, true)
		fs.IntVar(&count, "count", 0, "exit after this many events (0: until interrupted)")
	})
	if !ok {
		return code
	}
	ctx, stop := interruptible()
	defer stop()
	s, err := openStream(ctx, env, af, ff.query())
	if err != nil {
		fmt.Fprintln(env.Stderr, err)
		return 1
	}
	defer s.Close()
	var headers []string
	if ff.header != "" {
		for _, h := range strings.Split(ff.header, ",") {
			if h = strings.TrimSpace(h); h != "" {
				headers = append(headers, canonical(h))
			}
		}
	}
	seen := 0
	for count <= 0 || seen < count {
		line, ev, err := s.next()
		if err != nil {
			if ctx.Err() != nil {
				return 0 // interrupted
			}
			if errors.Is(err, io.EOF) {
				fmt.Fprintln(env.Stderr, "conduit tap: the server ended the stream")
			} else {
				fmt.Fprintln(env.Stderr, "conduit tap:", err)
			}
			return 1
		}
		if ev.Dropped > 0 && ev.Method == "" {
			if af.JSON {
				fmt.Fprintf(env.Stdout, "%s\n", line)
			} else {
				fmt.Fprintf(env.Stderr, "-- %d events dropped (this tap reads too slowly; narrow the filter)\n", ev.Dropped)
			}
			continue
		}
		seen++
		if af.JSON {
			fmt.Fprintf(env.Stdout, "%s\n", line)
		} else {
			fmt.Fprintln(env.Stdout, FormatLine(ev, headers))
		}
	}
	return 0
}

// FormatLine renders an event as `conduit tap` prints it: local time, status, latency,
// method, host and path, route → upstream, request id, then the chosen headers (`>` request,
// `<` response). Everything the client controls is escaped so a request cannot write to
// the terminal.
func FormatLine(ev *EventJSON, headers []string) string {
	var b strings.Builder
	t, err := time.Parse(time.RFC3339Nano, ev.Time)
	if err == nil {
		b.WriteString(t.Local().Format("15:04:05.000"))
	} else {
		b.WriteString(clean(ev.Time))
	}
	fmt.Fprintf(&b, " %3d %9s %-7s %s%s", ev.Status, formatMs(ev.DurationMs), clean(ev.Method), clean(ev.Host), clean(ev.Path))
	if ev.Query != "" {
		b.WriteString("?" + clean(ev.Query))
	}
	route := ev.Route
	if route == "" {
		route = "-"
	}
	b.WriteString("  " + clean(route))
	if ev.Upstream != "" {
		b.WriteString(" → " + clean(ev.Upstream))
	}
	if ev.RequestID != "" {
		b.WriteString("  " + clean(ev.RequestID))
	}
	for _, h := range headers {
		if v, ok := ev.RequestHeaders[h]; ok {
			b.WriteString("  > " + h + ": " + strconv.Quote(v))
		}
		if v, ok := ev.ResponseHeaders[h]; ok {
			b.WriteString("  < " + h + ": " + strconv.Quote(v))
		}
	}
	return b.String()
}

// formatMs renders a latency in milliseconds compactly: 0.123ms, 12.3ms, 1.23s.
func formatMs(v float64) string {
	switch {
	case v >= 1000:
		return strconv.FormatFloat(v/1000, 'f', 2, 64) + "s"
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64) + "ms"
	default:
		return strconv.FormatFloat(v, 'f', 3, 64) + "ms"
	}
}

// clean escapes control characters (C0, DEL and C1, which terminals read as escapes) as
// \xHH or \uHHHH.
func clean(s string) string {
	clean := true
	for _, r := range s {
		if unicode.IsControl(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r < 0x80 && unicode.IsControl(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		case unicode.IsControl(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// canonical is the header name as the server reports it.
func canonical(h string) string { return textproto.CanonicalMIMEHeaderKey(h) }
