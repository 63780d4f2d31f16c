package gopanic

import (
	"context"
	"net/http"
	"time"
)

// boom panics.
func boom(what string) { panic("boom: " + what) }

// Middleware starts goroutines and callbacks that panic, in the forms Conduit guards, then
// lets the request through.
func Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		go func() {
			var m map[string]int
			m["nil map"] = 1
		}()
		go func(what string) { boom(what) }("a literal with an argument")
		time.AfterFunc(time.Millisecond, func() { boom("time.AfterFunc") })
		ctx, cancel := context.WithCancel(context.Background())
		context.AfterFunc(ctx, func() { boom("context.AfterFunc") })
		cancel()
		next.ServeHTTP(w, r)
	})
}
