package hijacker

import (
	"net/http"
)

// Middleware takes the client's connection over and answers on it by hand, past Conduit's
// response writer: only an unrestricted script may (http.Hijacker is not in the sandbox).
func Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, ok := w.(http.Hijacker)
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		c, _, err := h.Hijack()
		if err != nil {
			next.ServeHTTP(w, r)
			return
		}
		_, _ = c.Write([]byte("HTTP/1.1 200 OK\r\nX-Hijacked: 1\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi"))
		_ = c.Close()
	})
}
