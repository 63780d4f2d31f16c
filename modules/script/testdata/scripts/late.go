package late

import (
	"fmt"
	"net/http"
	"sync"
	"time"
)

var (
	mu     sync.Mutex
	report string
)

// Middleware: /late runs for 300ms (past its budget), then sets a header and writes, and
// keeps what the write returned for /report; other paths continue.
func Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/late":
			until := time.Now().Add(300 * time.Millisecond)
			for time.Now().Before(until) {
			}
			w.Header().Set("X-Late", "1")
			n, err := w.Write([]byte("LATE"))
			mu.Lock()
			report = fmt.Sprintf("wrote %d: %v", n, err)
			mu.Unlock()
			return
		case "/report":
			mu.Lock()
			defer mu.Unlock()
			_, _ = w.Write([]byte(report))
			return
		}
		next.ServeHTTP(w, r)
	})
}
