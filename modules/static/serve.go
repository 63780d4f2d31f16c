package static

import (
	"io/fs"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/modules/static/mimetype"
)

// mount is one URL prefix (or the whole site) served from one or more roots, searched in
// order.
type mount struct {
	srv *FileServer
	// strip is the URL prefix removed before the file lookup ("" for the string and array
	// forms and for the prefix "/").
	strip string
	roots []*root
}

// ServeHTTP serves the file the request names, or passes the request to the not-found chain.
func (m *mount) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s := m.srv
	upath := r.URL.Path
	// An encoded slash inside a segment ("a%2fb", "..%2f") never names a file: the request
	// goes to the not-found chain without touching the disk. (Go sets RawPath whenever the
	// path holds an encoded slash, since the decoded Path cannot represent it.)
	if r.URL.RawPath != "" && hasEncodedSlash(r.URL.RawPath) {
		s.notFound.ServeHTTP(w, r)
		return
	}
	p := upath
	if m.strip != "" && strings.HasPrefix(p, m.strip) {
		p = p[len(m.strip):]
	}
	rel, dot, v := resolve(p)
	if v == pathBad {
		core.Error(w, r, http.StatusBadRequest, "invalid path")
		return
	}
	if dot {
		switch s.opts.dots {
		case dotIgnore:
			s.notFound.ServeHTTP(w, r)
			return
		case dotDeny:
			core.Error(w, r, http.StatusForbidden, "")
			return
		}
	}
	dirReq := upath == "" || upath[len(upath)-1] == '/'
	name := rel
	if name == "" {
		name = "."
	}
	for _, rt := range m.roots {
		root := rt.get()
		if root == nil {
			continue
		}
		f, fi := openEntry(root, name)
		if f == nil {
			continue
		}
		if !fi.IsDir() {
			if dirReq {
				// "file.html/" is not a file; another root may hold a directory of that name.
				_ = f.Close()
				continue
			}
			m.serveFile(w, r, root, f, fi, name)
			return
		}
		_ = f.Close()
		if !dirReq {
			if !methodAllowed(w, r) {
				return
			}
			redirectToDir(w, r)
			return
		}
		for _, idx := range s.opts.index {
			iname := idx
			if rel != "" {
				iname = rel + "/" + idx
			}
			f, fi := openEntry(root, iname)
			if f == nil {
				continue
			}
			if fi.IsDir() {
				_ = f.Close()
				continue
			}
			m.serveFile(w, r, root, f, fi, iname)
			return
		}
	}
	s.notFound.ServeHTTP(w, r)
}

// methodAllowed answers 405 (with Allow) for anything but GET and HEAD.
func methodAllowed(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	core.Error(w, r, http.StatusMethodNotAllowed, "")
	return false
}

// openEntry opens name in root and returns it with its info when it is a regular file or a
// directory; anything else (a missing name, an escaping symlink, a device, a FIFO) is nil.
// The open is non-blocking so a FIFO cannot hang the request.
func openEntry(root *os.Root, name string) (*os.File, fs.FileInfo) {
	f, err := root.OpenFile(name, openFlags, 0)
	if err != nil {
		return nil, nil
	}
	fi, err := f.Stat()
	if err != nil || !(fi.Mode().IsRegular() || fi.IsDir()) {
		_ = f.Close()
		return nil, nil
	}
	return f, fi
}

// redirectToDir sends a directory requested without its trailing slash to the slash form,
// as nginx and Caddy do. The Location is relative ("./docs/"), so it can never point at
// another host whatever the request path holds.
func redirectToDir(w http.ResponseWriter, r *http.Request) {
	ep := r.URL.EscapedPath()
	seg := ep[strings.LastIndexByte(ep, '/')+1:]
	loc := "./" + seg + "/"
	if r.URL.RawQuery != "" {
		loc += "?" + r.URL.RawQuery
	}
	h := w.Header()
	h.Set("Location", loc)
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusMovedPermanently)
}

// serveFile answers with f (named name inside root), choosing a pre-compressed sidecar when
// allowed, and lets http.ServeContent handle Range, If-Range, the conditional headers and
// HEAD. It closes f.
func (m *mount) serveFile(w http.ResponseWriter, r *http.Request, root *os.Root, f *os.File, fi fs.FileInfo, name string) {
	defer func() { _ = f.Close() }()
	if !methodAllowed(w, r) {
		return
	}
	o := m.srv.opts
	h := w.Header()
	var enc string
	if o.preCompressed {
		// The response depends on Accept-Encoding whether or not a sidecar is chosen.
		h.Add("Vary", "Accept-Encoding")
		// Range requests always get the identity file: ranges of a compressed
		// representation are useless to clients that asked for a piece of the file.
		if r.Header.Get("Range") == "" {
			if sf, sfi, e := openSidecar(root, name, r); sf != nil {
				_ = f.Close()
				f, fi, enc = sf, sfi, e
			}
		}
	}
	h.Set("Content-Type", mimetype.ByName(name))
	if o.cacheControl != "" {
		h.Set("Cache-Control", o.cacheControl)
	}
	if o.etag {
		h.Set("Etag", etagOf(fi))
	}
	var mod time.Time
	if o.lastModified {
		mod = fi.ModTime()
	}
	if enc != "" {
		http.ServeContent(&encodingWriter{ResponseWriter: w, enc: enc}, r, name, mod, f)
		return
	}
	http.ServeContent(w, r, name, mod, f)
}

// etagOf is a strong validator built from the file's modification time and size, as nginx
// does: "<mtime ns hex>-<size hex>". A sidecar has its own, so each representation has a
// distinct tag.
func etagOf(fi fs.FileInfo) string {
	var b [48]byte
	out := append(b[:0], '"')
	out = strconv.AppendInt(out, fi.ModTime().UnixNano(), 16)
	out = append(out, '-')
	out = strconv.AppendInt(out, fi.Size(), 16)
	out = append(out, '"')
	return string(out)
}

// openSidecar opens name.br or name.gz, in the client's order of preference, and returns it
// with its info and its Content-Encoding; nil when the client accepts neither or no sidecar
// exists.
func openSidecar(root *os.Root, name string, r *http.Request) (*os.File, fs.FileInfo, string) {
	br, gz := encodingQ(r.Header.Values("Accept-Encoding"))
	try := func(ext, enc string) (*os.File, fs.FileInfo, string) {
		f, fi := openEntry(root, name+ext)
		if f == nil {
			return nil, nil, ""
		}
		if fi.IsDir() {
			_ = f.Close()
			return nil, nil, ""
		}
		return f, fi, enc
	}
	first, second := br, gz
	firstExt, firstEnc, secondExt, secondEnc := ".br", "br", ".gz", "gzip"
	if gz > br {
		first, second = gz, br
		firstExt, firstEnc, secondExt, secondEnc = ".gz", "gzip", ".br", "br"
	}
	if first > 0 {
		if f, fi, e := try(firstExt, firstEnc); f != nil {
			return f, fi, e
		}
	}
	if second > 0 {
		return try(secondExt, secondEnc)
	}
	return nil, nil, ""
}

// encodingQ returns the quality (in thousandths, 0 = not acceptable) the Accept-Encoding
// header lines give br and gzip. A coding that is not listed takes the quality of "*", or 0.
// It does not allocate.
func encodingQ(lines []string) (br, gz int) {
	br, gz = -1, -1
	star := -1
	for _, line := range lines {
		for line != "" {
			var item string
			if i := strings.IndexByte(line, ','); i >= 0 {
				item, line = line[:i], line[i+1:]
			} else {
				item, line = line, ""
			}
			tok, params, _ := strings.Cut(item, ";")
			tok = strings.TrimSpace(tok)
			q := 1000
			if params != "" {
				q = parseQ(params)
			}
			switch {
			case strings.EqualFold(tok, "br"):
				br = q
			case strings.EqualFold(tok, "gzip"), strings.EqualFold(tok, "x-gzip"):
				gz = max(gz, q)
			case tok == "*":
				star = q
			}
		}
	}
	if star < 0 {
		star = 0
	}
	if br < 0 {
		br = star
	}
	if gz < 0 {
		gz = star
	}
	return br, gz
}

// parseQ reads the q parameter of a header item's parameters (" q=0.5"). A missing q is 1; a
// malformed one makes the item unacceptable.
func parseQ(params string) int {
	for params != "" {
		var p string
		if i := strings.IndexByte(params, ';'); i >= 0 {
			p, params = params[:i], params[i+1:]
		} else {
			p, params = params, ""
		}
		p = strings.TrimSpace(p)
		if len(p) < 2 || (p[0] != 'q' && p[0] != 'Q') || p[1] != '=' {
			continue
		}
		v := strings.TrimSpace(p[2:])
		if v == "" {
			return 0
		}
		switch v[0] {
		case '1':
			for i := 1; i < len(v); i++ {
				if (i == 1 && v[i] != '.') || (i > 1 && v[i] != '0') || i > 4 {
					return 0
				}
			}
			return 1000
		case '0':
			q, mul := 0, 100
			for i := 1; i < len(v); i++ {
				c := v[i]
				switch {
				case i == 1 && c == '.':
				case i > 1 && i <= 4 && c >= '0' && c <= '9':
					q += int(c-'0') * mul
					mul /= 10
				default:
					return 0
				}
			}
			return q
		default:
			return 0
		}
	}
	return 1000
}

// encodingWriter adds Content-Encoding to the successful response of a pre-compressed
// sidecar. Setting it after http.ServeContent has computed Content-Length keeps the length
// (ServeContent omits it when Content-Encoding is already set), and 304s and error
// responses do not carry it.
type encodingWriter struct {
	http.ResponseWriter
	enc   string
	wrote bool
}

// WriteHeader implements http.ResponseWriter.
func (e *encodingWriter) WriteHeader(code int) {
	if !e.wrote {
		e.wrote = true
		if code == http.StatusOK {
			e.Header().Set("Content-Encoding", e.enc)
		}
	}
	e.ResponseWriter.WriteHeader(code)
}

// Write implements http.ResponseWriter.
func (e *encodingWriter) Write(b []byte) (int, error) {
	if !e.wrote {
		e.WriteHeader(http.StatusOK)
	}
	return e.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (e *encodingWriter) Unwrap() http.ResponseWriter { return e.ResponseWriter }
