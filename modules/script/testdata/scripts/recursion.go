package recursion

import "net/http"

// depth recurses without end.
func depth(n int) int { return depth(n+1) + 1 }

// Middleware recurses without end on /rec; elsewhere it sets X-Recursion and continues.
func Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/rec" {
			_ = depth(0)
		}
		w.Header().Set("X-Recursion", "none")
		next.ServeHTTP(w, r)
	})
}
