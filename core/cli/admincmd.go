package cli

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/conduitproxy/conduit/core/config"
	"github.com/conduitproxy/conduit/core/server"
)

func init() {
	RegisterCommand(Command{Name: "reload", Summary: "ask a running Conduit to reload its config (POST /reload)", Run: runReload})
	RegisterCommand(Command{Name: "status", Summary: "show a running Conduit's status (--upstream for the upstream table)", Run: runStatus})
	RegisterCommand(Command{Name: "shutdown", Summary: "ask a running Conduit to shut down gracefully", Run: runShutdown})
}

// AdminClient talks to a running Conduit's Admin API.
type AdminClient struct {
	// Base is "http://host:port".
	Base string
	// Token is sent as a bearer token when set.
	Token string
	// HTTP is the client used; nil means a client with a 10 s timeout.
	HTTP *http.Client
}

// AdminFlags are the flags shared by commands that talk to the Admin API.
type AdminFlags struct {
	Addr string
	JSON bool
	// Config is -c/--config: the running Conduit's config file, read for global.admin.
	Config ConfigFlags
	// fromConfig is global.admin of Config.Path, once loaded.
	fromConfig server.AdminSettings
}

// Register adds --admin, --json and -c/--config to fs.
func (a *AdminFlags) Register(fs *flag.FlagSet) {
	fs.StringVar(&a.Addr, "admin", "", "Admin API address (default: global.admin.bind of -c FILE, then $CONDUIT_ADMIN, then 127.0.0.1:2019)")
	fs.BoolVar(&a.JSON, "json", false, "print the raw JSON answer")
	v := pathList{&a.Config}
	fs.Var(v, "c", "config `FILE` or directory of the running Conduit (repeatable): its global.admin.bind and global.admin.token ($VARs resolved) are used")
	fs.Var(v, "config", "config `FILE` (same as -c)")
}

// loadConfig reads global.admin from the -c file, if one was given. A config that does not
// load, or whose global.admin does not decode, is an error: the user named it.
func (a *AdminFlags) loadConfig(env *Env) error {
	if a.Config.Path == "" {
		return nil
	}
	doc, err := a.Config.Load(env)
	if err != nil {
		return err
	}
	var d config.Diagnostics
	d.TrackDocument(doc)
	if n, ok := doc.Global["admin"]; ok {
		config.Decode(n, "global.admin", &a.fromConfig, &d)
	}
	if errs := d.Errors(); len(errs) > 0 {
		if errs[0].File != "" {
			return fmt.Errorf("%s", errs[0].String())
		}
		return fmt.Errorf("%s: %s", doc.Path, errs[0].String())
	}
	return nil
}

// Client resolves the address (--admin, then global.admin.bind of -c FILE, then
// CONDUIT_ADMIN, then 127.0.0.1:2019) and the token (global.admin.token of -c FILE, then
// CONDUIT_ADMIN_TOKEN).
func (a *AdminFlags) Client(env *Env) *AdminClient {
	addr := a.Addr
	if addr == "" {
		addr = a.fromConfig.Bind
	}
	if addr == "" {
		addr, _ = env.LookupEnv("CONDUIT_ADMIN")
	}
	if addr == "" {
		addr = "127.0.0.1:2019"
	}
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	token, _ := env.LookupEnv("CONDUIT_ADMIN_TOKEN")
	if t := a.fromConfig.Token; t != nil && t.Reveal() != "" {
		token = t.Reveal()
	}
	return &AdminClient{Base: strings.TrimRight(addr, "/"), Token: token}
}

// Authorize adds the bearer token, if any, to req. A token that is only a variable
// reference ($NAME or ${NAME}, e.g. CONDUIT_ADMIN_TOKEN='$ADMIN_TOKEN' in single quotes) is
// refused without sending it: it is a placeholder nobody expanded, never a real token.
func (c *AdminClient) Authorize(req *http.Request) error {
	if c.Token == "" {
		return nil
	}
	if config.LooksLikeReference(c.Token) {
		return fmt.Errorf("CONDUIT_ADMIN_TOKEN is the text of a variable reference, not a token: expand it (double quotes, not single) or set the token itself")
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	return nil
}

// Do sends a request with an optional JSON body and decodes a JSON answer into out (if not
// nil). It returns the raw body too. A non-2xx answer is an error carrying the message.
func (c *AdminClient) Do(method, path string, body any, out any) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.Base+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if err := c.Authorize(req); err != nil {
		return nil, err
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 70 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("admin API unreachable at %s: %w", c.Base, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusUnauthorized {
		return raw, fmt.Errorf("admin API: 401 unauthorized (set CONDUIT_ADMIN_TOKEN)")
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Message string `json:"message"`
		}
		_ = json.Unmarshal(raw, &e)
		if e.Message == "" {
			e.Message = strings.TrimSpace(string(raw))
		}
		return raw, fmt.Errorf("admin API: %d: %s", resp.StatusCode, e.Message)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return raw, fmt.Errorf("admin API: bad JSON: %w", err)
		}
	}
	return raw, nil
}

// AdminCommand parses the flags of an Admin API command (--admin, --json, -c and the
// command's own, added by extra; flags and arguments in any order) and returns them with the
// remaining arguments. synopsis is the usage line after the command name. ok is false when
// the command should exit with code (after --help, a bad flag or a -c file that does not
// load).
func AdminCommand(env *Env, name, synopsis string, args []string, extra func(FlagAdder)) (af *AdminFlags, rest []string, code int, ok bool) {
	fs := newFlagSet(env, name)
	SetUsage(fs, synopsis)
	af = &AdminFlags{}
	af.Register(fs)
	if extra != nil {
		extra(fs)
	}
	rest, code, ok = ParseFlags(env, fs, args)
	if !ok {
		return nil, nil, code, false
	}
	if err := af.loadConfig(env); err != nil {
		fmt.Fprintln(env.Stderr, err)
		return nil, nil, 1, false
	}
	return af, rest, 0, true
}

// FlagAdder is the part of flag.FlagSet that commands use to add their own flags.
type FlagAdder interface {
	StringVar(*string, string, string, string)
	BoolVar(*bool, string, bool, string)
	IntVar(*int, string, int, string)
}

// FlagsOnlyAdminCommand is AdminCommand for a command that takes flags only: an argument is
// an error.
func FlagsOnlyAdminCommand(env *Env, name string, args []string, extra func(FlagAdder)) (*AdminFlags, int, bool) {
	af, rest, code, ok := AdminCommand(env, name, "[-c FILE] [--admin ADDR] [--json] [flags]", args, extra)
	if !ok {
		return nil, code, false
	}
	if len(rest) > 0 {
		fmt.Fprintf(env.Stderr, "conduit %s: unexpected argument %q\n", name, rest[0])
		return nil, 1, false
	}
	return af, 0, true
}

// PrintRaw prints a JSON answer indented.
func PrintRaw(env *Env, raw []byte) { printRaw(env, raw) }

func printRaw(env *Env, raw []byte) {
	var buf bytes.Buffer
	if json.Indent(&buf, raw, "", "  ") == nil {
		raw = buf.Bytes()
	}
	fmt.Fprintln(env.Stdout, strings.TrimSpace(string(raw)))
}

// fetch calls the Admin API and handles the two endings every admin command shares: an
// error (printed, exit 1) and --json (the raw answer printed, exit 0). done is false when
// the caller should go on and print out its own way.
func (af *AdminFlags) fetch(env *Env, method, path string, out any) (code int, done bool) {
	raw, err := af.Client(env).Do(method, path, nil, out)
	if err != nil {
		fmt.Fprintln(env.Stderr, err)
		return 1, true
	}
	if af.JSON {
		printRaw(env, raw)
		return 0, true
	}
	return 0, false
}

func runReload(env *Env, args []string) int {
	af, code, ok := FlagsOnlyAdminCommand(env, "reload", args, nil)
	if !ok {
		return code
	}
	var out struct {
		Message  string   `json:"message"`
		Warnings []string `json:"warnings"`
	}
	if code, done := af.fetch(env, http.MethodPost, "/reload", &out); done {
		return code
	}
	fmt.Fprintln(env.Stdout, out.Message)
	for _, w := range out.Warnings {
		fmt.Fprintln(env.Stdout, w)
	}
	return 0
}

func runShutdown(env *Env, args []string) int {
	af, code, ok := FlagsOnlyAdminCommand(env, "shutdown", args, nil)
	if !ok {
		return code
	}
	if code, done := af.fetch(env, http.MethodPost, "/shutdown", nil); done {
		return code
	}
	fmt.Fprintln(env.Stdout, "shutting down")
	return 0
}

func runStatus(env *Env, args []string) int {
	var upstream bool
	af, code, ok := FlagsOnlyAdminCommand(env, "status", args, func(fs FlagAdder) {
		fs.BoolVar(&upstream, "upstream", false, "show the upstream table (GET /upstreams)")
	})
	if !ok {
		return code
	}
	if upstream {
		var out struct {
			Upstreams []map[string]any `json:"upstreams"`
		}
		if code, done := af.fetch(env, http.MethodGet, "/upstreams", &out); done {
			return code
		}
		tb := NewTable(env, env.Stdout, "URL", "HEALTHY", "STATE", "LATENCY", "EJECTED", "5XX")
		st := tb.Style()
		paint := []func(string) string{nil, st.Status, st.Status, nil, ejectedPaint(st), nil}
		for _, u := range out.Upstreams {
			tb.PaintedRow(paint, u["url"], u["healthy"], u["state"], fmt.Sprintf("%vms", u["latency_ms"]), u["ejected"], u["consecutive_5xx"])
		}
		_ = tb.Flush()
		return 0
	}
	var out map[string]any
	if code, done := af.fetch(env, http.MethodGet, "/status", &out); done {
		return code
	}
	keys := make([]string, 0, len(out))
	for k := range out {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	tb := NewTable(env, env.Stdout)
	bold := []func(string) string{tb.Style().Bold}
	for _, k := range keys {
		tb.PaintedRow(bold, k, out[k])
	}
	_ = tb.Flush()
	return 0
}

// ejectedPaint colours an "ejected" cell: true (ejected) red, false unchanged.
func ejectedPaint(st Style) func(string) string {
	return func(s string) string {
		if s == "true" {
			return st.Red(s)
		}
		return s
	}
}
