package tap

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/conduitproxy/conduit/core/cli"
)

// maxSamples bounds the memory of `conduit top`: past it, the oldest samples are forgotten
// early (the rates then cover less than the window; the header says so).
const maxSamples = 200_000

// sample is one event as `conduit top` keeps it.
type sample struct {
	at         time.Time // when the CLI received it
	site       string
	route      string
	upstream   string
	status     int
	durMs      float64
	upstreamMs float64
}

// Window aggregates tap events over a sliding window for `conduit top`.
type Window struct {
	// Span is the window's length.
	Span    time.Duration
	since   time.Time // when observation began
	samples []sample  // in arrival order
	dropped int64
	trimmed bool
}

// NewWindow starts observing at now.
func NewWindow(span time.Duration, now time.Time) *Window {
	return &Window{Span: span, since: now}
}

// Add records an event received at now.
func (w *Window) Add(ev *EventJSON, now time.Time) {
	if ev.Dropped > 0 && ev.Method == "" {
		w.dropped += ev.Dropped
		return
	}
	s := sample{at: now, site: ev.Site, route: ev.Route, upstream: ev.Upstream, status: ev.Status, durMs: ev.DurationMs}
	if ev.UpstreamMs != nil {
		s.upstreamMs = *ev.UpstreamMs
	}
	if len(w.samples) >= maxSamples {
		n := copy(w.samples, w.samples[len(w.samples)/4:])
		w.samples = w.samples[:n]
		w.trimmed = true
	}
	w.samples = append(w.samples, s)
}

// Row is one line of `conduit top`.
type Row struct {
	// Site is the site label (routes only).
	Site string `json:"site,omitempty"`
	// Name is the route name or the upstream URL.
	Name string `json:"name"`
	// Requests is the number of requests in the window.
	Requests int `json:"requests"`
	// RPS is requests per second over the window (or the time observed, if shorter).
	RPS float64 `json:"rps"`
	// Success is the share of responses that are not 5xx, 0 … 1.
	Success float64 `json:"success"`
	// P50Ms and P99Ms are latency percentiles in milliseconds (total latency for routes,
	// time waiting on the upstream for upstreams).
	P50Ms float64 `json:"p50_ms"`
	P99Ms float64 `json:"p99_ms"`
}

// Report is what `conduit top` shows at one instant.
type Report struct {
	// Time is the instant.
	Time time.Time `json:"time"`
	// WindowSecs is the time the rates are computed over.
	WindowSecs float64 `json:"window_secs"`
	// Routes are per (site, route), busiest first.
	Routes []Row `json:"routes"`
	// Upstreams are per upstream URL, busiest first.
	Upstreams []Row `json:"upstreams"`
	// Dropped counts events the server dropped because this reader was slow.
	Dropped int64 `json:"dropped"`
}

// Report forgets samples older than the window and summarises the rest.
func (w *Window) Report(now time.Time) Report {
	cut := now.Add(-w.Span)
	i := sort.Search(len(w.samples), func(i int) bool { return w.samples[i].at.After(cut) })
	if i > 0 {
		n := copy(w.samples, w.samples[i:])
		w.samples = w.samples[:n]
	}
	span := w.Span
	if obs := now.Sub(w.since); obs < span {
		span = obs
	}
	if w.trimmed && len(w.samples) > 0 {
		if obs := now.Sub(w.samples[0].at); obs < span {
			span = obs
		}
	}
	secs := span.Seconds()
	if secs <= 0 {
		secs = math.SmallestNonzeroFloat64
	}
	type key struct{ site, name string }
	routes := map[key][]sample{}
	ups := map[string][]sample{}
	for _, s := range w.samples {
		name := s.route
		if name == "" {
			name = "-"
		}
		k := key{s.site, name}
		routes[k] = append(routes[k], s)
		if s.upstream != "" {
			ups[s.upstream] = append(ups[s.upstream], s)
		}
	}
	r := Report{Time: now, WindowSecs: span.Seconds(), Dropped: w.dropped}
	for k, ss := range routes {
		r.Routes = append(r.Routes, summarise(k.site, k.name, ss, secs, false))
	}
	for u, ss := range ups {
		r.Upstreams = append(r.Upstreams, summarise("", u, ss, secs, true))
	}
	order := func(rows []Row) {
		sort.Slice(rows, func(i, j int) bool {
			if rows[i].Requests != rows[j].Requests {
				return rows[i].Requests > rows[j].Requests
			}
			if rows[i].Site != rows[j].Site {
				return rows[i].Site < rows[j].Site
			}
			return rows[i].Name < rows[j].Name
		})
	}
	order(r.Routes)
	order(r.Upstreams)
	return r
}

func summarise(site, name string, ss []sample, secs float64, upstream bool) Row {
	lat := make([]float64, len(ss))
	ok := 0
	for i, s := range ss {
		if s.status < 500 {
			ok++
		}
		lat[i] = s.durMs
		if upstream {
			lat[i] = s.upstreamMs
		}
	}
	sort.Float64s(lat)
	return Row{Site: site, Name: name, Requests: len(ss), RPS: float64(len(ss)) / secs,
		Success: float64(ok) / float64(len(ss)), P50Ms: percentile(lat, 0.50), P99Ms: percentile(lat, 0.99)}
}

// percentile is the nearest-rank percentile of sorted values (0 for none).
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	if i < 0 {
		i = 0
	}
	return sorted[i]
}

// Render writes the report as text tables.
func (r Report) Render(out io.Writer, source string) {
	fmt.Fprintf(out, "conduit top  %s  %s  window %s", source, r.Time.Local().Format("15:04:05"), formatSecs(r.WindowSecs))
	if r.Dropped > 0 {
		fmt.Fprintf(out, "  dropped %d", r.Dropped)
	}
	fmt.Fprintln(out)
	fmt.Fprintln(out)
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ROUTE\tSITE\tREQ/S\tSUCCESS\tP50\tP99")
	if len(r.Routes) == 0 {
		fmt.Fprintln(tw, "(no requests)\t\t\t\t\t")
	}
	for _, row := range r.Routes {
		fmt.Fprintf(tw, "%s\t%s\t%.1f\t%.1f%%\t%s\t%s\n", clean(row.Name), clean(row.Site), row.RPS, row.Success*100, formatMs(row.P50Ms), formatMs(row.P99Ms))
	}
	_ = tw.Flush()
	if len(r.Upstreams) > 0 {
		fmt.Fprintln(out)
		tw = tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "UPSTREAM\tREQ/S\tSUCCESS\tP50\tP99")
		for _, row := range r.Upstreams {
			fmt.Fprintf(tw, "%s\t%.1f\t%.1f%%\t%s\t%s\n", clean(row.Name), row.RPS, row.Success*100, formatMs(row.P50Ms), formatMs(row.P99Ms))
		}
		_ = tw.Flush()
	}
}

func formatSecs(s float64) string {
	return (time.Duration(s * float64(time.Second))).Round(100 * time.Millisecond).String()
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// clearScreen moves the cursor home and clears the screen.
const clearScreen = "\x1b[H\x1b[2J"

func runTop(env *cli.Env, args []string) int {
	var ff filterFlags
	var interval, window string
	var once bool
	af, code, ok := cli.FlagsOnlyAdminCommand(env, "top", args, func(fs cli.FlagAdder) {
		ff.register(fs, false)
		fs.StringVar(&interval, "interval", "1s", "redraw interval")
		fs.StringVar(&window, "window", "", "sliding window the rates and percentiles cover (default 10s, or one interval when that is longer)")
		fs.BoolVar(&once, "once", false, "print one report after one interval and exit")
	})
	if !ok {
		return code
	}
	every, err := time.ParseDuration(interval)
	if err != nil || every < 100*time.Millisecond {
		fmt.Fprintf(env.Stderr, "conduit top: --interval %q: want a duration of at least 100ms\n", interval)
		return 1
	}
	span := max(DefaultTopWindow, every)
	if window != "" {
		span, err = time.ParseDuration(window)
	}
	if err != nil || span < every {
		fmt.Fprintf(env.Stderr, "conduit top: --window %q: want a duration of at least the interval\n", window)
		return 1
	}
	ctx, stop := interruptible()
	defer stop()
	s, err := openStream(ctx, env, af, ff.query())
	if err != nil {
		fmt.Fprintln(env.Stderr, err)
		return 1
	}
	defer s.Close()
	type item struct {
		ev  *EventJSON
		err error
	}
	events := make(chan item, 1024)
	go func() {
		for {
			_, ev, err := s.next()
			select {
			case events <- item{ev, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	w := NewWindow(span, time.Now())
	tty := isTerminal(env.Stdout)
	source := af.Client(env).Base
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return 0
		case it := <-events:
			if it.err != nil {
				if ctx.Err() != nil {
					return 0
				}
				fmt.Fprintln(env.Stderr, "conduit top: the server ended the stream:", it.err)
				return 1
			}
			w.Add(it.ev, time.Now())
		case now := <-tick.C:
			var streamErr error
		drain:
			for {
				select {
				case it := <-events:
					if it.err != nil {
						streamErr = it.err
						break drain
					}
					w.Add(it.ev, now)
				default:
					break drain
				}
			}
			rep := w.Report(now)
			switch {
			case af.JSON:
				b, _ := json.Marshal(rep)
				fmt.Fprintf(env.Stdout, "%s\n", b)
			case tty:
				fmt.Fprint(env.Stdout, clearScreen)
				rep.Render(env.Stdout, source)
			default:
				rep.Render(env.Stdout, source)
				fmt.Fprintln(env.Stdout)
			}
			if once {
				return 0
			}
			if streamErr != nil {
				if ctx.Err() != nil {
					return 0
				}
				fmt.Fprintln(env.Stderr, "conduit top: the server ended the stream:", streamErr)
				return 1
			}
		}
	}
}
