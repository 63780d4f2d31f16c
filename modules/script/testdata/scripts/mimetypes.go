package mimetypes

import (
	"mime"
	"net/http"
)

// Middleware would change the process's extension table, and with it the Content-Type of
// every static file: mime.AddExtensionType is not in the sandbox.
func Middleware(next http.Handler) http.Handler {
	_ = mime.AddExtensionType(".txt", "text/html")
	return next
}
