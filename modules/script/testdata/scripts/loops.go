package loops

import (
	"net/http"
	"time"
)

// Middleware loops forever on /spin, sleeps an hour on /sleep, and continues otherwise.
func Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/spin":
			n := 0
			for {
				n++
			}
		case "/sleep":
			time.Sleep(time.Hour)
		}
		next.ServeHTTP(w, r)
	})
}
