package tagged

import (
	"net/http"

	"conduit/script"
)

// New appends the entry's config "tag" to X-Order on the request and the response.
func New(cfg script.Config, next http.Handler) (http.Handler, error) {
	tag, _ := cfg.Map()["tag"].(string)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Header.Add("X-Order", tag)
		w.Header().Add("X-Order", tag)
		if r.Header.Get("X-Stop-At") == tag {
			script.Abort(w, 418, "stopped at "+tag)
			return
		}
		next.ServeHTTP(w, r)
	}), nil
}
