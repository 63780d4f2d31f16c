package gate

import (
	"net/http"

	"conduit/script"
)

func New(cfg script.Config, next http.Handler) (http.Handler, error) {
	var c struct{ Key string }
	if err := cfg.Decode(&c); err != nil {
		return nil, err
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Api-Key") != c.Key {
			w.Header().Set("WWW-Authenticate", "ApiKey")
			script.Abort(w, 401, "unauthorized")
			return
		}
		next.ServeHTTP(w, r)
	}), nil
}
