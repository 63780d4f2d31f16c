package panics

import "net/http"

// Middleware panics on /boom and continues otherwise.
func Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/boom" {
			var m map[string]int
			m["x"] = 1
		}
		next.ServeHTTP(w, r)
	})
}
