package upload_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core/server/servertest"

	_ "github.com/conduitproxy/conduit/modules/auth/basic"
	_ "github.com/conduitproxy/conduit/modules/health"
	_ "github.com/conduitproxy/conduit/modules/limits"
	_ "github.com/conduitproxy/conduit/modules/proxy"
	_ "github.com/conduitproxy/conduit/modules/static"
	_ "github.com/conduitproxy/conduit/modules/upload"
)

// pngBytes starts like a PNG file, so content sniffing calls it image/png.
var pngBytes = append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), bytes.Repeat([]byte{7}, 200)...)

// part is one form part as curl -F sends it: field name, file name (raw, unescaped, as a
// hostile client may send it) and declared type.
type part struct {
	field, filename, ctype string
	data                   []byte
}

// form builds a multipart/form-data body as `curl -F field=@file;type=…` does.
func form(t *testing.T, parts ...part) (body []byte, contentType string) {
	t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	for _, p := range parts {
		h := textproto.MIMEHeader{}
		cd := fmt.Sprintf(`form-data; name="%s"`, p.field)
		if p.filename != "" {
			cd += fmt.Sprintf(`; filename="%s"`, p.filename)
		}
		h.Set("Content-Disposition", cd)
		if p.ctype != "" {
			h.Set("Content-Type", p.ctype)
		}
		pw, err := w.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = pw.Write(p.data)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes(), w.FormDataContentType()
}

type reply struct {
	status int
	body   map[string]any
	raw    string
}

func post(t *testing.T, url string, body []byte, ctype string, hdr ...string) reply {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", ctype)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, raw: string(raw)}
	_ = json.Unmarshal(raw, &r.body)
	return r
}

func files(r reply) []map[string]any {
	var out []map[string]any
	list, _ := r.body["files"].([]any)
	for _, f := range list {
		m, _ := f.(map[string]any)
		out = append(out, m)
	}
	return out
}

// entries lists dir, dot files (temporary files) included.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

var storedName = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}(\.[a-z0-9]{1,10})?$`)

func start(t *testing.T, dir, extra string) *servertest.Server {
	t.Helper()
	return servertest.Start(t, fmt.Sprintf("port: 8080\nupload:\n  path: /upload\n  dir: %q\n%s", dir, extra))
}

func TestUploadStoresFilesUnderUUIDNames(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "created", "on start")
	srv := start(t, dir, "")
	body, ct := form(t,
		part{"title", "", "", []byte("holiday")},
		part{"file", "Photo.PNG", "image/png", pngBytes},
		part{"file", "notes.txt", "text/plain", []byte("hello\n")},
	)
	r := post(t, srv.URL(8080)+"/upload", body, ct)
	if r.status != http.StatusOK || r.body["status"] != "ok" {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	fs := files(r)
	if len(fs) != 2 {
		t.Fatalf("files %v", r.raw)
	}
	want := []struct {
		orig, ext, mime string
		data            []byte
	}{{"Photo.PNG", ".png", "image/png", pngBytes}, {"notes.txt", ".txt", "text/plain", []byte("hello\n")}}
	for i, w := range want {
		f := fs[i]
		name, _ := f["name"].(string)
		if !storedName.MatchString(name) || !strings.HasSuffix(name, w.ext) || f["originalName"] != w.orig || f["mimeType"] != w.mime || f["size"] != float64(len(w.data)) {
			t.Fatalf("file %d: %v", i, f)
		}
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || !bytes.Equal(got, w.data) {
			t.Fatalf("stored %s: %v (%d bytes)", name, err, len(got))
		}
	}
	if es := entries(t, dir); len(es) != 2 {
		t.Fatalf("dir holds %v", es)
	}
	// Below the path too.
	body, ct = form(t, part{"file", "a.bin", "", []byte{0, 1, 2}})
	if r := post(t, srv.URL(8080)+"/upload/avatars", body, ct); r.status != http.StatusOK {
		t.Fatalf("below the path: %d %s", r.status, r.raw)
	}
}

func TestClientFileNamesNeverReachThePath(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "up")
	srv := start(t, dir, "")
	long := strings.Repeat("ä", 300) + ".txt"
	for _, tc := range []struct{ name, ext string }{
		{"../../evil.sh", ".sh"},
		{"/etc/passwd", ""},
		{`..\..\windows\system.ini`, ".ini"},
		{"name.with.dots.tar.gz", ".gz"},
		{".htaccess", ".htaccess"},
		{"x.<script>", ""},
		{"x.averyverylongext", ""},
		{long, ".txt"},
		{"", ""},
	} {
		body, ct := form(t, part{"file", tc.name, "text/plain", []byte("content")})
		r := post(t, srv.URL(8080)+"/upload", body, ct)
		if r.status != http.StatusOK {
			t.Fatalf("%q: %d %s", tc.name, r.status, r.raw)
		}
		f := files(r)[0]
		name := f["name"].(string)
		if !storedName.MatchString(name) || filepath.Ext(name) != tc.ext {
			t.Errorf("%q stored as %q, want a UUID with extension %q", tc.name, name, tc.ext)
		}
		if orig := f["originalName"].(string); len(orig) > 255 || strings.ContainsAny(orig, "\x00/") {
			t.Errorf("%q: originalName %q", tc.name, orig)
		}
	}
	// A NUL in the header is a malformed part: refused, nothing stored.
	body, ct := form(t, part{"file", "a\x00b.txt", "text/plain", []byte("content")})
	if r := post(t, srv.URL(8080)+"/upload", body, ct); r.status != http.StatusBadRequest {
		t.Fatalf("NUL in the file name: %d %s", r.status, r.raw)
	}
	// Nothing was written outside dir.
	if es := entries(t, root); len(es) != 1 || es[0] != "up" {
		t.Fatalf("the parent of dir holds %v", es)
	}
}

func TestLimits(t *testing.T) {
	kb := bytes.Repeat([]byte("x"), 1000)
	cases := []struct {
		name, config string
		parts        []part
		status       int
		reason       string
	}{
		{"file too large", "  maxFileSizeBytes: 999", []part{{"file", "a.txt", "", kb}}, 413, "maxFileSizeBytes"},
		{"file at the limit", "  maxFileSizeBytes: 1000", []part{{"file", "a.txt", "", kb}}, 200, ""},
		{"too many files", "  maxFiles: 2", []part{{"file", "a", "", kb}, {"file", "b", "", kb}, {"file", "c", "", kb}}, 413, "maxFiles"},
		{"total too large", "  maxTotalSizeBytes: 1500", []part{{"file", "a", "", kb}, {"file", "b", "", kb}}, 413, "maxTotalSizeBytes"},
		{"no file field", "  fieldName: upload", []part{{"file", "a", "", kb}}, 400, `no file in the form field "upload"`},
		{"custom field", "  fieldName: upload", []part{{"upload", "a", "", kb}}, 200, ""},
		{"big other fields", "", []part{{"note", "", "", bytes.Repeat([]byte("n"), 1<<20+1)}, {"file", "a", "", kb}}, 413, "form fields"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			srv := start(t, dir, tc.config)
			body, ct := form(t, tc.parts...)
			r := post(t, srv.URL(8080)+"/upload", body, ct)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.raw)
			}
			if tc.status != 200 {
				if r.body["status"] != float64(tc.status) || !strings.Contains(fmt.Sprint(r.body["reason"]), tc.reason) {
					t.Fatalf("error body %s, want a JSON error naming %q", r.raw, tc.reason)
				}
				// A refused request leaves nothing behind: no file, no temporary file.
				if es := entries(t, dir); len(es) != 0 {
					t.Fatalf("dir holds %v after a refused upload", es)
				}
			}
		})
	}
}

func TestMimeTypes(t *testing.T) {
	html := []byte("<!DOCTYPE html><html><script>alert(1)</script></html>")
	cases := []struct {
		name, allowed string
		p             part
		status        int
		mime          string
	}{
		{"png declared and sniffed", "[image/png]", part{"file", "a.png", "image/png", pngBytes}, 200, "image/png"},
		{"wildcard", "[image/*]", part{"file", "a.png", "image/png", pngBytes}, 200, "image/png"},
		{"html declared as png", "[image/png]", part{"file", "a.png", "image/png", html}, 415, ""},
		{"png declared as text", "[image/png]", part{"file", "a.png", "text/plain", pngBytes}, 415, ""},
		{"no declared type: sniffing decides", "[image/png]", part{"file", "a.png", "", pngBytes}, 200, "image/png"},
		{"json is text to the sniffer", "[application/json]", part{"file", "a.json", "application/json", []byte(`{"a":1}`)}, 200, "application/json"},
		{"html declared as json", "[application/json]", part{"file", "a.json", "application/json", html}, 415, ""},
		{"unknown bytes under an allowed declared type", "[application/pdf, application/x-custom]", part{"file", "a.bin", "application/x-custom", []byte{0, 1, 2, 3, 0xff}}, 200, "application/x-custom"},
		{"unknown bytes, no declared type", "[application/x-custom]", part{"file", "a.bin", "", []byte{0, 1, 2, 3, 0xff}}, 415, ""},
		{"default: all", "[]", part{"file", "a.html", "text/html", html}, 200, "text/html"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			srv := start(t, dir, "  allowedMimeTypes: "+tc.allowed)
			body, ct := form(t, tc.p)
			r := post(t, srv.URL(8080)+"/upload", body, ct)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.raw)
			}
			if tc.status == 200 && files(r)[0]["mimeType"] != tc.mime {
				t.Fatalf("mimeType %v, want %s", files(r)[0]["mimeType"], tc.mime)
			}
			if tc.status != 200 && len(entries(t, dir)) != 0 {
				t.Fatalf("dir holds %v", entries(t, dir))
			}
		})
	}
}

func TestRequestShape(t *testing.T) {
	srv := start(t, t.TempDir(), "")
	if r := servertest.Get(t, srv.URL(8080)+"/upload"); r.Status != http.StatusMethodNotAllowed || r.Header.Get("Allow") != "POST" {
		t.Fatalf("GET: %d %v", r.Status, r.Header)
	}
	if r := post(t, srv.URL(8080)+"/upload", []byte(`{"file":"x"}`), "application/json"); r.status != http.StatusUnsupportedMediaType {
		t.Fatalf("JSON body: %d %s", r.status, r.raw)
	}
	if r := post(t, srv.URL(8080)+"/upload", []byte("--b\r\nbroken"), "multipart/form-data; boundary=b"); r.status != http.StatusBadRequest {
		t.Fatalf("broken multipart: %d %s", r.status, r.raw)
	}
	if r := servertest.Get(t, srv.URL(8080)+"/uploads"); r.Status != http.StatusNotFound {
		t.Fatalf("/uploads is not below /upload: %d", r.Status)
	}
}

// TestGuardsApplyAndRoutesComeAfter: the upload router answers after the guards (basic
// auth, body limits) and before routes[] and the proxy.
func TestGuardsApplyAndRoutesComeAfter(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "proxied "+r.URL.Path) }))
	t.Cleanup(up.Close)
	dir := t.TempDir()
	srv := servertest.Start(t, fmt.Sprintf(`port: 8080
basicAuth: {users: {alice: wonderland}}
limits: {maxBodyBytes: 4096}
proxy: %q
routes: [{match: {path: /upload/**}, proxy: %q}]
upload: {path: /upload, dir: %q}
`, up.URL, up.URL, dir))
	body, ct := form(t, part{"file", "a.txt", "", []byte("hi")})
	if r := post(t, srv.URL(8080)+"/upload", body, ct); r.status != http.StatusUnauthorized {
		t.Fatalf("without credentials: %d", r.status)
	}
	auth := []string{"Authorization", "Basic YWxpY2U6d29uZGVybGFuZA=="}
	if r := post(t, srv.URL(8080)+"/upload", body, ct, auth...); r.status != http.StatusOK {
		t.Fatalf("with credentials: %d %s", r.status, r.raw)
	}
	// Before routes[]: a route that matches the upload path does not take it.
	if r := post(t, srv.URL(8080)+"/upload/x", body, ct, auth...); r.status != http.StatusOK || r.body["status"] != "ok" {
		t.Fatalf("below the path, with a matching route: %d %s", r.status, r.raw)
	}
	big, ct := form(t, part{"file", "a.txt", "", bytes.Repeat([]byte("x"), 8192)})
	if r := post(t, srv.URL(8080)+"/upload", big, ct, auth...); r.status != http.StatusRequestEntityTooLarge {
		t.Fatalf("over limits.maxBodyBytes: %d %s", r.status, r.raw)
	}
	if r := servertest.Get(t, srv.URL(8080)+"/other", auth...); r.Status != http.StatusOK || r.Body != "proxied /other" {
		t.Fatalf("other paths: %d %q", r.Status, r.Body)
	}
	if es := entries(t, dir); len(es) != 2 {
		t.Fatalf("dir holds %v; want the two accepted files", es)
	}
}

func TestClientGoneMidUploadLeavesNoFile(t *testing.T) {
	dir := t.TempDir()
	srv := start(t, dir, "")
	body, ct := form(t, part{"file", "big.bin", "", bytes.Repeat([]byte("z"), 1<<20)})
	c, err := net.Dial("tcp", srv.HostPort(8080))
	if err != nil {
		t.Fatal(err)
	}
	head := "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: " + ct + "\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n"
	if _, err := c.Write(append([]byte(head), body[:len(body)/2]...)); err != nil {
		t.Fatal(err)
	}
	// The temporary file appears while the body streams in …
	deadline := time.Now().Add(5 * time.Second)
	for len(entries(t, dir)) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if len(entries(t, dir)) == 0 {
		t.Fatal("no temporary file while the upload streams")
	}
	_ = c.Close() // … and goes when the client does.
	deadline = time.Now().Add(5 * time.Second)
	for len(entries(t, dir)) != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if es := entries(t, dir); len(es) != 0 {
		t.Fatalf("dir holds %v after the client went away", es)
	}
}

// TestLargeUploadStreamsToDisk posts 1 GiB (64 MiB with -short) and checks that the
// process's peak memory did not grow with it.
func TestLargeUploadStreamsToDisk(t *testing.T) {
	size := int64(1 << 30)
	if testing.Short() {
		size = 64 << 20
	}
	dir := t.TempDir()
	srv := start(t, dir, fmt.Sprintf("  maxFileSizeBytes: %d", size))
	before := peakRSS(t)
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	sent := sha256.New()
	go func() {
		fw, err := mw.CreateFormFile("file", "big.bin")
		if err == nil {
			chunk := bytes.Repeat([]byte("0123456789abcdef"), 4096)
			for n := int64(0); n < size && err == nil; n += int64(len(chunk)) {
				_, err = io.MultiWriter(fw, sent).Write(chunk[:min(int64(len(chunk)), size-n)])
			}
		}
		if err == nil {
			err = mw.Close()
		}
		pw.CloseWithError(err)
	}()
	req, _ := http.NewRequest(http.MethodPost, srv.URL(8080)+"/upload", pr)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var a struct {
		Files []struct {
			Name string
			Size int64
		}
	}
	if resp.StatusCode != 200 || json.Unmarshal(raw, &a) != nil || len(a.Files) != 1 || a.Files[0].Size != size {
		t.Fatalf("%d %s", resp.StatusCode, raw)
	}
	f, err := os.Open(filepath.Join(dir, a.Files[0].Name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	stored := sha256.New()
	if _, err := io.Copy(stored, f); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(stored.Sum(nil), sent.Sum(nil)) {
		t.Fatal("the stored file differs from the upload")
	}
	if grew := peakRSS(t) - before; grew > 64<<20 {
		t.Fatalf("peak RSS grew by %d MiB for a %d MiB upload", grew>>20, size>>20)
	}
}

// peakRSS returns the process's peak resident set size (VmHWM), skipping where /proc has
// none.
func peakRSS(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status on this system")
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	t.Skip("no VmHWM in /proc/self/status")
	return 0
}

// TestAllowedTypesBindTheStoredExtension: with allowedMimeTypes, the client's extension is
// kept only when the type it maps to is allowed. A PNG that passes an image/png-only check
// but is named x.html was stored as ….html, which a static site serving the directory sent
// back as text/html: a PNG with a <script> in a text chunk then ran in the site's origin.
func TestAllowedTypesBindTheStoredExtension(t *testing.T) {
	dir := t.TempDir()
	srv := servertest.Start(t, fmt.Sprintf(`sites:
  - port: 8080
    upload: {path: /upload, dir: %q, allowedMimeTypes: [image/png, image/jpeg]}
  - port: 8081
    static: %q
`, dir, dir))
	polyglot := append(append([]byte{}, pngBytes...), "tEXt<script>alert(document.domain)</script>"...)
	for _, tc := range []struct{ name, ext string }{
		{"x.html", ""},
		{"x.HTM", ""},
		{"x.svg", ""},
		{"x.js", ""},
		{"x.xml", ""},
		{"x.txt", ""},
		{"x.png", ".png"},
		{"x.JPG", ".jpg"}, // an allowed type: a browser shows it as an image or not at all
		{"x", ""},
	} {
		body, ct := form(t, part{"file", tc.name, "image/png", polyglot})
		r := post(t, srv.URL(8080)+"/upload", body, ct)
		if r.status != http.StatusOK {
			t.Fatalf("%s: %d %s", tc.name, r.status, r.raw)
		}
		name := files(r)[0]["name"].(string)
		if !storedName.MatchString(name) || filepath.Ext(name) != tc.ext {
			t.Errorf("%q stored as %q, want the extension %q", tc.name, name, tc.ext)
		}
		got := servertest.Get(t, srv.URL(8081)+"/"+name)
		if ctype := got.Header.Get("Content-Type"); got.Status != http.StatusOK || (ctype != "image/png" && ctype != "image/jpeg" && ctype != "application/octet-stream") {
			t.Errorf("%q served back as %d %q", tc.name, got.Status, ctype)
		}
	}
	// Without allowedMimeTypes every type is accepted, and the extension is the client's.
	dir2 := t.TempDir()
	srv2 := start(t, dir2, "")
	body, ct := form(t, part{"file", "page.html", "text/html", []byte("<p>hi</p>")})
	if r := post(t, srv2.URL(8080)+"/upload", body, ct); r.status != http.StatusOK || filepath.Ext(files(r)[0]["name"].(string)) != ".html" {
		t.Fatalf("without allowedMimeTypes: %d %s", r.status, r.raw)
	}
}

// TestStalledUploadIs408: a body that stalls past global.clientBodyTimeoutMs gets 408 with
// Connection: close, as everywhere else in Conduit (docs/configuration.md, slow clients),
// and leaves no file. It got 400 and kept the connection open for its unread body.
func TestStalledUploadIs408(t *testing.T) {
	dir := t.TempDir()
	srv := servertest.Start(t, fmt.Sprintf("global: {clientBodyTimeoutMs: 300}\nsites:\n  - port: 8080\n    upload: {path: /upload, dir: %q}\n", dir))
	body, ct := form(t, part{"file", "a.txt", "", bytes.Repeat([]byte("x"), 5000)})
	c, err := net.Dial("tcp", srv.HostPort(8080))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Chunked, without a Content-Length: 1 KiB of the body, then nothing.
	head := "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: " + ct + "\r\nTransfer-Encoding: chunked\r\n\r\n"
	if _, err := fmt.Fprintf(c, "%s%x\r\n%s\r\n", head, 1024, body[:1024]); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout || !resp.Close {
		t.Fatalf("a stalled upload: %d, Connection: %q, %s", resp.StatusCode, resp.Header.Get("Connection"), raw)
	}
	if es := entries(t, dir); len(es) != 0 {
		t.Fatalf("dir holds %v after a stalled upload", es)
	}
}
