package counter

import "net/http"

// hits counts requests per path: shared by every request, and written without a lock.
var hits = map[string]int{}

// Middleware counts the request's path and continues. Requests run at once, so without a
// sync.Mutex around hits, Go can end the process on concurrent map writes: validate warns.
func Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "" {
			return
		}
		hits[r.URL.Path]++
		next.ServeHTTP(w, r)
	})
}
