package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/config"
	"github.com/conduitproxy/conduit/core/server"
	yaml "go.yaml.in/yaml/v3"
)

func init() {
	RegisterCommand(Command{Name: "init", Summary: "write a starter config: a wizard on a terminal, or from flags with --yes", Run: runInit, NoConfig: true})
}

// initOptions are the answers `conduit init` writes a config from.
type initOptions struct {
	output, format         string
	yes                    bool
	port                   int
	staticDir              string
	noStatic               bool
	proxy                  string
	noProxy                bool
	log                    string
	noHealth               bool
	tlsCert, tlsKey, email string
	host                   string
	// overwrite is set when the wizard's user confirmed replacing an existing file.
	overwrite bool
}

// register declares init's flags on fs.
func (o *initOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&o.output, "o", "", "the `FILE` to write (default conduit.yaml, or conduit.json with --format json); its extension decides the format")
	fs.StringVar(&o.output, "output", "", "the `FILE` to write (same as -o)")
	fs.BoolVar(&o.yes, "y", false, "no questions: write the config the flags describe (defaults for the rest)")
	fs.BoolVar(&o.yes, "yes", false, "no questions (same as -y)")
	ChoiceVar(fs, &o.format, "format", "", []string{"yaml", "json"}, "config `FORMAT` (default from the -o extension, else yaml)")
	fs.IntVar(&o.port, "port", 8080, "the `PORT` the site listens on")
	fs.StringVar(&o.staticDir, "static-dir", "./dist", "serve static files from `DIR`")
	fs.BoolVar(&o.noStatic, "no-static", false, "serve no static files")
	fs.StringVar(&o.proxy, "proxy", "", "proxy to the upstream `URL` (under /api when static files are served too)")
	fs.BoolVar(&o.noProxy, "no-proxy", false, "proxy nothing")
	ChoiceVar(fs, &o.log, "log", "dev", []string{"dev", "json", "combined", "none"}, "access log `FORMAT`")
	fs.BoolVar(&o.noHealth, "no-health", false, "turn the /__health__ endpoint off")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "TLS certificate `FILE` (PEM; needs --tls-key)")
	fs.StringVar(&o.tlsKey, "tls-key", "", "TLS private key `FILE` (PEM; needs --tls-cert)")
	fs.StringVar(&o.email, "tls-acme", "", "get a certificate from Let's Encrypt for --host, with this contact `EMAIL`")
	fs.StringVar(&o.host, "host", "", "the site's host `NAME` (needed by --tls-acme)")
}

func runInit(env *Env, args []string) int {
	var o initOptions
	fs := newFlagSet(env, "init")
	SetUsage(fs, "[-y] [-o FILE] [flags]")
	o.register(fs)
	pos, code, ok := ParseFlags(env, fs, args)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		fmt.Fprintf(env.Stderr, "conduit init: unexpected argument %q\n", pos[0])
		return 1
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if !o.yes {
		f, isFile := env.Stdin.(*os.File)
		if !isFile || !isTerminal(f) {
			fmt.Fprintln(env.Stderr, "conduit init: the wizard needs a terminal; pass --yes (-y) and flags to write a config without questions")
			return 1
		}
		w := &wizard{in: bufio.NewReader(env.Stdin), out: env.Stdout}
		if err := w.ask(env, &o, set); err != nil {
			fmt.Fprintf(env.Stderr, "conduit init: %v\n", err)
			return 1
		}
	}
	if err := o.resolve(set); err != nil {
		fmt.Fprintf(env.Stderr, "conduit init: %v\n", err)
		return 1
	}
	data, err := o.render()
	if err != nil {
		fmt.Fprintf(env.Stderr, "conduit init: %v\n", err)
		return 1
	}
	path := o.output
	if !filepath.IsAbs(path) && env.Dir != "" {
		path = filepath.Join(env.Dir, path)
	}
	if errs := checkGenerated(data, path, env.LookupEnv); len(errs) > 0 {
		fmt.Fprintln(env.Stderr, "conduit init: the config would not validate:")
		for _, e := range errs {
			fmt.Fprintln(env.Stderr, "  "+e)
		}
		return 1
	}
	if err := writeNew(path, data, o.overwrite); err != nil {
		fmt.Fprintf(env.Stderr, "conduit init: %v\n", err)
		return 1
	}
	fmt.Fprintf(env.Stdout, "wrote %s; check it with `conduit validate %s` and serve it with `conduit -c %s`\n", o.output, o.output, o.output)
	return 0
}

// resolveFormat decides the format (from the -o extension, else yaml) and the output file.
func (o *initOptions) resolveFormat() {
	if o.format == "" {
		if strings.EqualFold(filepath.Ext(o.output), ".json") {
			o.format = "json"
		} else {
			o.format = "yaml"
		}
	}
	if o.output == "" {
		o.output = "conduit." + o.format
	}
}

// resolve fills the defaults and checks the combination of answers; set holds the flags
// given on the command line.
func (o *initOptions) resolve(set map[string]bool) error {
	o.resolveFormat()
	ext := strings.ToLower(filepath.Ext(o.output))
	if (o.format == "json") != (ext == ".json") && (ext == ".json" || ext == ".yaml" || ext == ".yml") {
		return fmt.Errorf("--format %s does not match the extension of %s", o.format, o.output)
	}
	if o.port < 1 || o.port > 65535 {
		return fmt.Errorf("--port %d: must be between 1 and 65535", o.port)
	}
	if o.noStatic && set["static-dir"] {
		return errors.New("--static-dir and --no-static contradict each other")
	}
	if o.noProxy && o.proxy != "" {
		return errors.New("--proxy and --no-proxy contradict each other")
	}
	if o.proxy != "" {
		if err := checkUpstream(o.proxy); err != nil {
			return fmt.Errorf("--proxy: %w", err)
		}
	}
	if (o.tlsCert == "") != (o.tlsKey == "") {
		return errors.New("--tls-cert and --tls-key need each other")
	}
	if o.email != "" && o.tlsCert != "" {
		return errors.New("--tls-acme and --tls-cert/--tls-key are two ways to get a certificate; choose one")
	}
	if o.email != "" && o.host == "" {
		return errors.New("--tls-acme needs --host (the DNS name the certificate is for)")
	}
	return nil
}

// checkUpstream accepts an http or https URL with a host.
func checkUpstream(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http:// or https:// URL", s)
	}
	return nil
}

// initConfig is the single-site config init writes, in the order the keys are written.
type initConfig struct {
	Host        string   `json:"host,omitempty" yaml:"host,omitempty"`
	Port        int      `json:"port" yaml:"port"`
	TLS         *initTLS `json:"tls,omitempty" yaml:"tls,omitempty"`
	Static      string   `json:"static,omitempty" yaml:"static,omitempty"`
	Proxy       any      `json:"proxy,omitempty" yaml:"proxy,omitempty"`
	Logging     any      `json:"logging" yaml:"logging"`
	HealthCheck *bool    `json:"healthCheck,omitempty" yaml:"healthCheck,omitempty"`
}

type initTLS struct {
	Cert string    `json:"cert,omitempty" yaml:"cert,omitempty"`
	Key  string    `json:"key,omitempty" yaml:"key,omitempty"`
	ACME *initACME `json:"acme,omitempty" yaml:"acme,omitempty"`
}

type initACME struct {
	Email string `json:"email" yaml:"email"`
}

// render writes the answers as a config in the chosen format.
func (o *initOptions) render() ([]byte, error) {
	c := initConfig{Host: o.host, Port: o.port}
	if !o.noStatic && o.staticDir != "" {
		c.Static = o.staticDir
	}
	if !o.noProxy && o.proxy != "" {
		if c.Static != "" {
			c.Proxy = map[string]string{"/api": o.proxy}
		} else {
			c.Proxy = o.proxy
		}
	}
	c.Logging = o.log
	if o.log == "none" {
		c.Logging = false
	}
	if o.noHealth {
		c.HealthCheck = new(bool)
	}
	switch {
	case o.tlsCert != "":
		c.TLS = &initTLS{Cert: o.tlsCert, Key: o.tlsKey}
	case o.email != "":
		c.TLS = &initTLS{ACME: &initACME{Email: o.email}}
	}
	if o.format == "json" {
		b, err := json.MarshalIndent(c, "", "  ")
		return append(b, '\n'), err
	}
	var buf bytes.Buffer
	buf.WriteString("# Written by `conduit init`; every key is described in docs/configuration.md.\n")
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(c); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// checkGenerated builds the config as `conduit validate` would and returns its errors.
func checkGenerated(data []byte, path string, lookup func(string) (string, bool)) []string {
	doc, err := config.Parse(data, config.FormatOf(path), lookup)
	if err != nil {
		return []string{err.Error()}
	}
	doc.Path = path
	g, d := server.Build(context.Background(), doc, server.BuildOptions{Logger: slog.New(slog.DiscardHandler)})
	var out []string
	for _, e := range d.Errors() {
		out = append(out, e.String())
	}
	if g != nil && len(out) == 0 {
		g.Stop(context.Background())
	}
	return out
}

// writeNew writes data to path; an existing file is replaced only when overwrite is set
// (the wizard asked), else it is an error.
func writeNew(path string, data []byte, overwrite bool) error {
	if overwrite {
		return core.WriteFileAtomic(path, data, 0o644)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%s exists; remove it, choose another -o, or run the wizard to confirm overwriting it", path)
	}
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// wizard asks init's questions on a terminal.
type wizard struct {
	in  *bufio.Reader
	out io.Writer
}

// line prints a question with its default and reads the answer ("" keeps the default).
func (w *wizard) line(question, def string) (string, error) {
	if def != "" {
		fmt.Fprintf(w.out, "%s [%s]: ", question, def)
	} else {
		fmt.Fprintf(w.out, "%s: ", question)
	}
	s, err := w.in.ReadString('\n')
	if err != nil && (s == "" || !errors.Is(err, io.EOF)) {
		if errors.Is(err, io.EOF) {
			return "", errors.New("input ended before the last question")
		}
		return "", err
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return def, nil
	}
	return s, nil
}

// yesNo asks a yes/no question until the answer is one; Enter keeps def.
func (w *wizard) yesNo(question string, def bool) (bool, error) {
	hint := "y/N"
	if def {
		hint = "Y/n"
	}
	for {
		s, err := w.line(question+" ["+hint+"]", "")
		if err != nil {
			return false, err
		}
		switch strings.ToLower(s) {
		case "":
			return def, nil
		case "y", "yes":
			return true, nil
		case "n", "no":
			return false, nil
		}
		fmt.Fprintln(w.out, "  answer y or n")
	}
}

// until asks question until check accepts the answer.
func (w *wizard) until(question, def string, check func(string) error) (string, error) {
	for {
		s, err := w.line(question, def)
		if err != nil {
			return "", err
		}
		if err := check(s); err != nil {
			fmt.Fprintf(w.out, "  %v\n", err)
			continue
		}
		return s, nil
	}
}

// oneOf accepts one of choices.
func oneOf(choices ...string) func(string) error {
	return func(s string) error {
		for _, c := range choices {
			if s == c {
				return nil
			}
		}
		return fmt.Errorf("answer one of %s", strings.Join(choices, ", "))
	}
}

// ask runs the wizard: the flags given on the command line are answers already, the others
// are asked with the flags' defaults.
func (w *wizard) ask(env *Env, o *initOptions, set map[string]bool) error {
	fmt.Fprintln(w.out, "conduit init: a few questions; Enter keeps the default in brackets.")
	var err error
	if !set["format"] && !set["o"] && !set["output"] {
		if o.format, err = w.until("Config format (yaml, json)", "yaml", oneOf("yaml", "json")); err != nil {
			return err
		}
	}
	o.resolveFormat()
	if !set["port"] {
		p, err := w.until("Port", strconv.Itoa(o.port), func(s string) error {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 || n > 65535 {
				return errors.New("a port is a number from 1 to 65535")
			}
			return nil
		})
		if err != nil {
			return err
		}
		o.port, _ = strconv.Atoi(p)
	}
	if !set["no-static"] && !set["static-dir"] {
		serve, err := w.yesNo("Serve static files?", true)
		if err != nil {
			return err
		}
		o.noStatic = !serve
		if serve {
			if o.staticDir, err = w.until("Static directory", o.staticDir, func(s string) error { return nil }); err != nil {
				return err
			}
		}
	}
	if !set["no-proxy"] && !set["proxy"] {
		px, err := w.yesNo("Proxy requests to an upstream?", false)
		if err != nil {
			return err
		}
		if px {
			if o.proxy, err = w.until("Upstream URL", "http://127.0.0.1:3000", checkUpstream); err != nil {
				return err
			}
		}
	}
	if !set["log"] {
		if o.log, err = w.until("Access log (dev, json, combined, none)", o.log, oneOf("dev", "json", "combined", "none")); err != nil {
			return err
		}
	}
	if !set["no-health"] {
		h, err := w.yesNo("Health endpoint at /__health__?", true)
		if err != nil {
			return err
		}
		o.noHealth = !h
	}
	if !set["tls-cert"] && !set["tls-key"] && !set["tls-acme"] {
		mode, err := w.until("TLS (none, files, acme)", "none", oneOf("none", "files", "acme"))
		if err != nil {
			return err
		}
		exists := func(s string) error {
			p := s
			if !filepath.IsAbs(p) && env.Dir != "" {
				p = filepath.Join(env.Dir, p)
			}
			if _, err := os.Stat(p); err != nil {
				return fmt.Errorf("%s: no such file", s)
			}
			return nil
		}
		switch mode {
		case "files":
			if o.tlsCert, err = w.until("Certificate file (PEM)", "", exists); err != nil {
				return err
			}
			if o.tlsKey, err = w.until("Private key file (PEM)", "", exists); err != nil {
				return err
			}
		case "acme":
			if o.host, err = w.until("Host name the certificate is for", o.host, nonEmpty); err != nil {
				return err
			}
			if o.email, err = w.until("Contact email for Let's Encrypt", "", nonEmpty); err != nil {
				return err
			}
		}
	}
	path := o.output
	if !filepath.IsAbs(path) && env.Dir != "" {
		path = filepath.Join(env.Dir, path)
	}
	if _, err := os.Stat(path); err == nil {
		ok, err := w.yesNo(o.output+" exists. Overwrite it?", false)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%s exists; not overwritten", o.output)
		}
		o.overwrite = true
	}
	return nil
}

func nonEmpty(s string) error {
	if strings.TrimSpace(s) == "" {
		return errors.New("an answer is needed")
	}
	return nil
}
