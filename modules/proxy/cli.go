package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/conduitproxy/conduit/core/cli"
	"github.com/conduitproxy/conduit/core/config"
)

func init() {
	cli.RegisterCommand(cli.Command{Name: "probe", Summary: "HEAD every upstream of a config and print a table (exit 1 on a failure)", Run: runProbe})
	cli.RegisterCommand(cli.Command{Name: "upstreams", Summary: "list a running Conduit's upstreams; add|remove|weight|drain|undrain change them", Run: runUpstreams})
}

// probeResult is one upstream's answer to `conduit probe`.
type probeResult struct {
	url     string
	status  int
	err     error
	latency time.Duration
}

func (p probeResult) failed() bool { return p.err != nil || p.status >= 500 }

// runProbe HEADs every upstream named in the config (plain TCP connect for https targets)
// in parallel and prints failures first.
func runProbe(env *cli.Env, args []string) int {
	fs := cli.NewFlagSet(env, "probe")
	var cf cli.ConfigFlags
	cf.Register(fs)
	timeout := fs.Duration("timeout", 3*time.Second, "per-upstream timeout")
	cli.SetUsage(fs, "[--timeout D] [-c FILE | FILE]")
	if code, ok := cf.Parse(env, fs, args); !ok {
		return code
	}
	doc, err := cf.Load(env)
	if err != nil {
		fmt.Fprintln(env.Stderr, err)
		return 1
	}
	urls := collectUpstreams(doc)
	if len(urls) == 0 {
		fmt.Fprintln(env.Stdout, "no upstreams in this config")
		return 0
	}
	results := make([]probeResult, len(urls))
	var wg sync.WaitGroup
	for i, u := range urls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = probeOne(u, *timeout)
		}()
	}
	wg.Wait()
	sort.SliceStable(results, func(i, j int) bool { return results[i].failed() && !results[j].failed() })
	tb := cli.NewTable(env, env.Stdout, "UPSTREAM", "RESULT", "LATENCY")
	st := tb.Style()
	failed := false
	for _, r := range results {
		res := fmt.Sprint(r.status)
		switch {
		case r.err != nil:
			res = "error: " + r.err.Error()
		case r.status == 0:
			res = "connect ok"
		}
		paint := []func(string) string{nil, st.Green}
		if r.failed() {
			failed = true
			paint[1] = st.Red
		}
		tb.PaintedRow(paint, r.url, res, r.latency.Round(time.Millisecond))
	}
	_ = tb.Flush()
	if failed {
		return 1
	}
	return 0
}

func probeOne(raw string, timeout time.Duration) probeResult {
	res := probeResult{url: raw}
	u, err := url.Parse(raw)
	if err != nil {
		res.err = err
		return res
	}
	start := time.Now()
	if u.Scheme == "https" {
		host := u.Host
		if u.Port() == "" {
			host = net.JoinHostPort(u.Hostname(), "443")
		}
		c, err := net.DialTimeout("tcp", host, timeout)
		res.latency = time.Since(start)
		if err != nil {
			res.err = err
			return res
		}
		c.Close()
		return res
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodHead, u.Scheme+"://"+u.Host+"/", nil)
	req.Header.Set("User-Agent", "conduit-probe")
	resp, err := http.DefaultTransport.RoundTrip(req)
	res.latency = time.Since(start)
	if err != nil {
		res.err = err
		return res
	}
	resp.Body.Close()
	res.status = resp.StatusCode
	return res
}

// collectUpstreams returns every distinct upstream URL of the document, in file order.
func collectUpstreams(doc *config.Document) []string {
	var out []string
	seen := map[string]bool{}
	add := func(s string) {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	var fromTarget func(n config.Node)
	fromTarget = func(n config.Node) {
		var d config.Diagnostics
		rc := decodeTarget(n, "", &d)
		if rc == nil {
			return
		}
		for _, t := range rc.Targets {
			add(t.URL)
		}
		for _, g := range rc.Groups {
			if g != nil {
				for _, t := range g.Targets {
					add(t.URL)
				}
			}
		}
		add(rc.Backup)
	}
	for _, site := range doc.Sites {
		switch p := site["proxy"].(type) {
		case string, []config.Node:
			fromTarget(p)
		case map[string]config.Node:
			if looksLikeRouteObject(p) {
				fromTarget(p)
				break
			}
			for _, k := range config.SortedKeys(p) {
				fromTarget(p[k])
			}
		}
		if routes, ok := site["routes"].([]config.Node); ok {
			for _, r := range routes {
				if m, ok := r.(map[string]config.Node); ok && m["proxy"] != nil {
					fromTarget(m["proxy"])
				}
			}
		}
	}
	return out
}

// upstreamsListing is the answer of GET /upstreams.
type upstreamsListing struct {
	Routes []upstreamsRoute `json:"routes"`
}

// upstreamsRoute is one route of GET /upstreams.
type upstreamsRoute struct {
	Site, Path, Strategy string
	Targets              []map[string]any
}

// printUpstreams prints the listing as a table.
func printUpstreams(env *cli.Env, out upstreamsListing) {
	tb := cli.NewTable(env, env.Stdout, "SITE", "ROUTE", "STRATEGY", "TARGET", "WEIGHT", "HEALTHY", "DRAINED")
	st := tb.Style()
	paint := []func(string) string{nil, st.Bold, nil, nil, nil, st.Status, nil}
	for _, r := range out.Routes {
		for _, t := range r.Targets {
			tb.PaintedRow(paint, r.Site, r.Path, r.Strategy, t["url"], t["weight"], t["healthy"], t["drained"] == true)
		}
	}
	_ = tb.Flush()
}

// upstreamFlags are the flags of `conduit upstreams add|remove|weight|drain|undrain`.
type upstreamFlags struct {
	route, target, site string
	weight              int
}

// body returns the POST body of the change, or an error naming the missing flags.
func (f *upstreamFlags) body(sub string) (map[string]any, error) {
	if f.route == "" || f.target == "" || (sub == "weight" && f.weight < 1) {
		msg := "conduit upstreams " + sub + ": --route and --target are required"
		if sub == "weight" {
			msg += ", and --weight ≥ 1"
		}
		return nil, errors.New(msg)
	}
	body := map[string]any{"route": f.route, "target": f.target}
	if f.weight > 0 {
		body["weight"] = f.weight
	}
	if f.site != "" {
		body["site"] = f.site
	}
	return body, nil
}

// runUpstreams is `conduit upstreams [add|remove|weight|drain|undrain]`: the listing, or a change followed
// by the route's new listing (--json: the raw answers).
func runUpstreams(env *cli.Env, args []string) int {
	sub := ""
	if len(args) > 0 && slices.Contains([]string{"add", "remove", "weight", "drain", "undrain"}, args[0]) {
		sub, args = args[0], args[1:]
	}
	var f upstreamFlags
	af, rest, code, ok := cli.AdminCommand(env, "upstreams", "[add|remove|weight|drain|undrain] [-c FILE] [--admin ADDR] [--json] [flags]", args, func(fs cli.FlagAdder) {
		fs.StringVar(&f.route, "route", "", "route path, e.g. /api (add, remove, weight, drain, undrain)")
		fs.StringVar(&f.target, "target", "", "upstream URL (add, remove, weight, drain, undrain)")
		fs.IntVar(&f.weight, "weight", 0, "weight (add: default 1; weight: required)")
		fs.StringVar(&f.site, "site", "", "site label (host:port, or * for the first site with the route)")
	})
	if !ok {
		return code
	}
	if len(rest) > 0 {
		fmt.Fprintf(env.Stderr, "conduit upstreams: unexpected argument %q (add, remove, weight, drain or undrain comes first)\n", rest[0])
		return 1
	}
	c := af.Client(env)
	if sub != "" {
		body, err := f.body(sub)
		if err != nil {
			fmt.Fprintln(env.Stderr, err)
			return 1
		}
		raw, err := c.Do(http.MethodPost, "/upstreams/"+sub, body, nil)
		if err != nil {
			fmt.Fprintf(env.Stderr, "conduit upstreams %s: %v\n", sub, err)
			return 1
		}
		if af.JSON {
			cli.PrintRaw(env, raw)
			return 0
		}
	}
	var out upstreamsListing
	raw, err := c.Do(http.MethodGet, "/upstreams", nil, &out)
	if err != nil {
		fmt.Fprintln(env.Stderr, err)
		return 1
	}
	if af.JSON {
		cli.PrintRaw(env, raw)
		return 0
	}
	if sub != "" {
		out.Routes = slices.DeleteFunc(out.Routes, func(r upstreamsRoute) bool {
			return r.Path != f.route || (f.site != "" && f.site != "*" && r.Site != f.site)
		})
	}
	printUpstreams(env, out)
	return 0
}
