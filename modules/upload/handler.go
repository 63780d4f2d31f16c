package upload

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/modules/static/mimetype"
)

// File describes one stored file in the answer.
type File struct {
	// Name is the stored file's name in dir: a UUID v4 and the sanitised extension.
	Name string `json:"name"`
	// OriginalName is the client's file name (its last path element, valid UTF-8, at most
	// 255 bytes); it never influences where the file is stored.
	OriginalName string `json:"originalName"`
	// Size is the file's size in bytes.
	Size int64 `json:"size"`
	// MimeType is the sniffed type, or the declared one when sniffing only found generic
	// bytes or text.
	MimeType string `json:"mimeType"`
}

// answer is the body of a successful upload.
type answer struct {
	Status string `json:"status"`
	Files  []File `json:"files"`
}

// problem is why a request was refused: its status and reason.
type problem struct {
	status int
	reason string
}

func refuse(status int, format string, args ...any) *problem {
	return &problem{status, fmt.Sprintf(format, args...)}
}

// serve answers one upload request.
func (u *uploader) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		core.JSONError(w, http.StatusMethodNotAllowed, http.StatusText(http.StatusMethodNotAllowed), "uploads are POST multipart/form-data")
		return
	}
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		core.JSONError(w, http.StatusUnsupportedMediaType, http.StatusText(http.StatusUnsupportedMediaType), "the request body must be multipart/form-data")
		return
	}
	files, paths, p := u.receive(multipart.NewReader(r.Body, params["boundary"]))
	if p == nil && len(files) == 0 {
		p = refuse(http.StatusBadRequest, "no file in the form field %q", u.fieldName)
	}
	if p != nil {
		for _, f := range paths {
			_ = os.Remove(f)
		}
		if p.status == http.StatusRequestEntityTooLarge || p.status == http.StatusRequestTimeout {
			w.Header().Set("Connection", "close") // the rest of the body is not read
		}
		core.JSONError(w, p.status, http.StatusText(p.status), p.reason)
		return
	}
	body, _ := json.Marshal(answer{Status: "ok", Files: files})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// receive reads every part of the body, storing the files of the field. It returns the
// files stored so far with their paths, and the problem that ended the request, if any (the
// caller then removes the files: a refused request leaves none).
func (u *uploader) receive(mr *multipart.Reader) ([]File, []string, *problem) {
	var files []File
	var paths []string
	var total, fields int64
	for parts := 1; ; parts++ {
		part, err := mr.NextPart()
		if err == io.EOF {
			return files, paths, nil
		}
		if err != nil {
			return files, paths, bodyProblem(err)
		}
		if parts > MaxParts {
			return files, paths, refuse(http.StatusRequestEntityTooLarge, "more than %d form parts", MaxParts)
		}
		if part.FormName() != u.fieldName {
			n, err := io.Copy(io.Discard, io.LimitReader(part, MaxFieldBytes-fields+1))
			fields += n
			if err != nil {
				return files, paths, bodyProblem(err)
			}
			if fields > MaxFieldBytes {
				return files, paths, refuse(http.StatusRequestEntityTooLarge, "the form fields other than %q exceed %d bytes", u.fieldName, MaxFieldBytes)
			}
			continue
		}
		if len(files) == u.maxFiles {
			return files, paths, refuse(http.StatusRequestEntityTooLarge, "more than maxFiles (%d) files", u.maxFiles)
		}
		f, path, p := u.store(part, total)
		if p != nil {
			return files, paths, p
		}
		total += f.Size
		files = append(files, f)
		paths = append(paths, path)
	}
}

// store streams one file part to a temporary file in dir and renames it to its final name.
// total is the size of the request's files stored before this one.
func (u *uploader) store(part *multipart.Part, total int64) (File, string, *problem) {
	head := make([]byte, 512)
	n, err := io.ReadFull(part, head)
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return File{}, "", bodyProblem(err)
	}
	head = head[:n]
	mimeType, ok := u.checkType(part.Header.Get("Content-Type"), http.DetectContentType(head))
	if !ok {
		return File{}, "", refuse(http.StatusUnsupportedMediaType, "the file's type (declared %q, content %s) is not in allowedMimeTypes", part.Header.Get("Content-Type"), mimeType)
	}
	// limit is what this file may hold, -1 for no limit; which names the cap that sets it.
	limit, which, capBytes := int64(-1), "", int64(0)
	if u.maxFile > 0 {
		limit, which, capBytes = u.maxFile, "maxFileSizeBytes", u.maxFile
	}
	if u.maxTotal > 0 && (limit < 0 || u.maxTotal-total < limit) {
		limit, which, capBytes = u.maxTotal-total, "maxTotalSizeBytes", u.maxTotal
	}
	tmp, err := os.CreateTemp(u.dir, ".upload-*.part")
	if err != nil {
		slog.Error("upload: cannot create a file", "dir", u.dir, "err", err)
		return File{}, "", refuse(http.StatusInternalServerError, "the file could not be stored")
	}
	done := false
	defer func() {
		if !done {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	var src io.Reader = io.MultiReader(bytes.NewReader(head), part)
	if limit >= 0 {
		src = io.LimitReader(src, limit+1)
	}
	size, err := io.Copy(tmp, src)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			slog.Error("upload: cannot write a file", "file", tmp.Name(), "err", err)
			return File{}, "", refuse(http.StatusInternalServerError, "the file could not be stored")
		}
		return File{}, "", bodyProblem(err)
	}
	if limit >= 0 && size > limit {
		return File{}, "", refuse(http.StatusRequestEntityTooLarge, "the upload exceeds %s (%d bytes)", which, capBytes)
	}
	name := newUUID() + u.extFor(part.FileName())
	final := filepath.Join(u.dir, name)
	if err := finish(tmp, final); err != nil {
		slog.Error("upload: cannot store a file", "file", final, "err", err)
		return File{}, "", refuse(http.StatusInternalServerError, "the file could not be stored")
	}
	done = true
	return File{Name: name, OriginalName: displayName(part.FileName()), Size: size, MimeType: mimeType}, final, nil
}

// finish makes the temporary file durable and readable by the group, and renames it.
func finish(tmp *os.File, final string) error {
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Chmod(0o640); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), final)
}

// bodyProblem is the answer to an error reading the request body: 413 when a body limit
// (limits.maxBodyBytes) ended it, 408 when it stalled (global.clientBodyTimeoutMs) or fell
// behind limits.minUploadRateBytesPerSec, 400 otherwise (a malformed body, or a client that
// went away, which reads no answer).
func bodyProblem(err error) *problem {
	var mb *http.MaxBytesError
	if errors.As(err, &mb) {
		return refuse(http.StatusRequestEntityTooLarge, "the request body exceeds %d bytes", mb.Limit)
	}
	if errors.Is(err, core.ErrUploadTooSlow) {
		return refuse(http.StatusRequestTimeout, "the request body arrived too slowly")
	}
	return refuse(http.StatusBadRequest, "reading the multipart body: %v", err)
}

// checkType decides whether a file whose part declares the Content-Type declared and whose
// first bytes sniff as sniffed may be stored, and which type to report. Without
// allowedMimeTypes every file is accepted. With them, a declared type must be allowed, and
// the content must agree: its sniffed type is allowed, or sniffing found only unknown bytes
// (application/octet-stream) under an allowed declared type, or only text under a textual
// declared type (JSON, CSV, XML …, which sniffing cannot tell from text).
func (u *uploader) checkType(declared, sniffed string) (string, bool) {
	d, s := mediaType(declared), mediaType(sniffed)
	report := s
	if (s == "application/octet-stream" || s == "text/plain") && d != "" {
		report = d
	}
	if len(u.allowed) == 0 {
		return report, true
	}
	if d != "" && !u.allows(d) {
		return report, false
	}
	switch {
	case u.allows(s):
		return report, true
	case s == "application/octet-stream":
		return report, d != ""
	case s == "text/plain":
		return report, textual(d)
	}
	return report, false
}

// allows reports whether the media type t matches allowedMimeTypes.
func (u *uploader) allows(t string) bool {
	typ, _, _ := strings.Cut(t, "/")
	for _, a := range u.allowed {
		if a == t || (strings.HasSuffix(a, "/*") && a[:len(a)-2] == typ) {
			return true
		}
	}
	return false
}

// mediaType returns the lower-case type/subtype of a Content-Type value, "" when it has none.
func mediaType(v string) string {
	mt, _, err := mime.ParseMediaType(v)
	if err != nil || !strings.Contains(mt, "/") {
		return ""
	}
	return mt
}

// textual reports whether a declared type is text that sniffing reports as text/plain.
func textual(t string) bool {
	switch {
	case strings.HasPrefix(t, "text/"), strings.HasSuffix(t, "+json"), strings.HasSuffix(t, "+xml"):
		return true
	}
	switch t {
	case "application/json", "application/xml", "application/javascript", "application/yaml", "application/x-yaml", "application/x-ndjson", "application/csv":
		return true
	}
	return false
}

// storedExt returns the extension a stored file keeps: the client name's last extension in
// lower case, when it is 1 to 10 ASCII letters and digits ("photo.JPG" → ".jpg"); "" for
// anything else. Nothing else of the client's name reaches the file system.
func storedExt(name string) string {
	i := strings.LastIndexByte(name, '.')
	if i < 0 || len(name)-i-1 < 1 || len(name)-i-1 > 10 {
		return ""
	}
	ext := []byte(strings.ToLower(name[i+1:]))
	for _, c := range ext {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return ""
		}
	}
	return "." + string(ext)
}

// extFor returns the extension the file named name (by the client) is stored with:
// storedExt, and, with allowedMimeTypes, only when the type that extension is served as
// (modules/static/mimetype, unknown extensions as application/octet-stream) is allowed. The
// type check reads the content, not the name, so without this a PNG named x.html would be
// stored as ….html and served back as text/html by a site that serves the directory.
func (u *uploader) extFor(name string) string {
	ext := storedExt(name)
	if ext == "" || len(u.allowed) == 0 || u.allows(mediaType(mimetype.ByName(ext))) {
		return ext
	}
	return ""
}

// displayName returns the client's file name for the answer: valid UTF-8 without control
// characters, at most 255 bytes, cut on a character boundary.
func displayName(name string) string {
	name = strings.ToValidUTF8(name, "\uFFFD")
	name = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, name)
	if len(name) > 255 {
		cut := 255
		for cut > 0 && !utf8.RuneStart(name[cut]) {
			cut--
		}
		name = name[:cut]
	}
	return name
}

// newUUID returns a random UUID v4 (RFC 9562) in its canonical text form.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
