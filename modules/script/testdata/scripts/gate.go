package gate

import (
	"net/http"
	"strings"

	"conduit/script"
)

type settings struct {
	Token   string            `json:"token"`
	Reject  int               `json:"reject"`
	Headers map[string]string `json:"headers"`
	Prefix  struct {
		From string `json:"from"`
		To   string `json:"to"`
	} `json:"prefix"`
}

// New refuses requests without the configured token, then rewrites the request.
func New(cfg script.Config, next http.Handler) (http.Handler, error) {
	var s settings
	if err := cfg.Decode(&s); err != nil {
		return nil, err
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Token") != s.Token {
			w.Header().Set("X-Denied-By", cfg.Name)
			script.Abort(w, s.Reject, "no token for "+r.Method+" "+r.URL.Path)
			return
		}
		for k, v := range s.Headers {
			r.Header.Set(k, v)
		}
		r.Header.Del("X-Token")
		if s.Prefix.From != "" && strings.HasPrefix(r.URL.Path, s.Prefix.From) {
			if err := script.SetPath(r, s.Prefix.To+strings.TrimPrefix(r.URL.Path, s.Prefix.From)); err != nil {
				script.Abort(w, 400, err.Error())
				return
			}
		}
		if r.URL.Query().Get("drop") != "" {
			q := r.URL.Query()
			q.Del("drop")
			script.SetQuery(r, q.Encode())
		}
		next.ServeHTTP(w, r)
	}), nil
}
