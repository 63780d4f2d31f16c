package broken

import "net/http"

// Middleware does not compile: undefined name on line 8.
func Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X", undefinedName)
		next.ServeHTTP(w, r)
	})
}
