package gonamed

import "net/http"

// audit records a request somewhere slow.
func audit(path string) { _ = path }

// Middleware starts audit on a goroutine of its own with a go statement that names the
// function: Conduit cannot give it a recover, so validate warns.
func Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := r.URL.Path
		go audit(path)
		next.ServeHTTP(w, r)
	})
}
