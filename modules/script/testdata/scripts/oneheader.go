package oneheader

import (
	"net/http"

	"conduit/script"
)

// Middleware sets one response header and continues.
func Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Script", "yes")
		next.ServeHTTP(w, r)
	})
}

// Response sets one response header in the response phase.
func Response(r *http.Request, resp *script.Response) {
	resp.Header.Set("X-Script", "yes")
}
