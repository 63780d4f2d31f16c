package core

import (
	"net/http"
	"strconv"
	"strings"
)

// WantsJSON reports whether the client asked for JSON (Accept contains application/json).
func WantsJSON(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept") {
		if strings.Contains(v, "application/json") {
			return true
		}
	}
	return false
}

// Deny answers 401 or 403 (or any denial status, docs/auth.md): a JSON body
// {"error":"…","status":N} when the client sends Accept: application/json, an empty body
// otherwise.
func Deny(w http.ResponseWriter, r *http.Request, status int) {
	h := w.Header()
	if WantsJSON(r) {
		body := jsonError(http.StatusText(status), status, "")
		h.Set("Content-Type", "application/json")
		h.Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(status)
		_, _ = w.Write(body)
		return
	}
	h.Set("Content-Length", "0")
	w.WriteHeader(status)
}

// Error answers an error status with a short body: JSON ({"error","status"[,"reason"]}) for
// clients that accept JSON, the status text otherwise. reason may be "".
func Error(w http.ResponseWriter, r *http.Request, status int, reason string) {
	h := w.Header()
	var body []byte
	if WantsJSON(r) {
		body = jsonError(http.StatusText(status), status, reason)
		h.Set("Content-Type", "application/json")
	} else {
		text := http.StatusText(status)
		if reason != "" {
			text += ": " + reason
		}
		body = []byte(text + "\n")
		h.Set("Content-Type", "text/plain; charset=utf-8")
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// JSONError writes exactly {"error":msg,"status":status[,"reason":reason]} with
// Content-Type application/json, regardless of Accept (the 503 bodies of docs/proxy.md).
func JSONError(w http.ResponseWriter, status int, msg, reason string) {
	body := jsonError(msg, status, reason)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func jsonError(msg string, status int, reason string) []byte {
	b := make([]byte, 0, 64)
	b = append(b, `{"error":`...)
	b = strconv.AppendQuote(b, msg)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(status), 10)
	if reason != "" {
		b = append(b, `,"reason":`...)
		b = strconv.AppendQuote(b, reason)
	}
	return append(b, '}')
}

// IsToken reports whether s is an RFC 9110 token: the syntax of methods and header field
// names.
func IsToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}
