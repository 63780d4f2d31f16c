package loops

import (
	"net/http"
	"time"

	"conduit/script"
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

// Response loops forever on /spin, panics on /boom, and marks the response otherwise.
func Response(r *http.Request, resp *script.Response) {
	switch r.URL.Path {
	case "/spin":
		for {
			resp.Header.Set("X-Spun", "yes")
		}
	case "/boom":
		panic("boom")
	}
	resp.Header.Set("X-Response-Phase", "ran")
}
