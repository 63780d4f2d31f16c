package multi

import "net/http"

// Middleware stamps the header named in names.go.
func Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(headerName, greeting())
		next.ServeHTTP(w, r)
	})
}
