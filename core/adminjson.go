package core

import (
	"encoding/json"
	"net/http"
)

// AdminJSON writes v as an Admin API answer with status: `Content-Type: application/json`,
// `Cache-Control: no-store` (answers carry live state and must never be reused by a cache) and
// the JSON text followed by a newline. A value that cannot be encoded becomes a 500 error
// answer. Every Admin API endpoint, in core or in a module, answers through it.
func AdminJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"status":"error","message":"encoding failed"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// AdminError writes the Admin API's one error shape, {"status":"error","message":msg}, which
// `conduit reload`, `status` and `upstreams` print. An error that carries more than a message
// passes a map with these two keys and its own to AdminJSON.
func AdminError(w http.ResponseWriter, status int, msg string) {
	AdminJSON(w, status, map[string]string{"status": "error", "message": msg})
}
