package oneheader

import "net/http"

// Middleware sets one response header and continues.
func Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Script", "yes")
		next.ServeHTTP(w, r)
	})
}
