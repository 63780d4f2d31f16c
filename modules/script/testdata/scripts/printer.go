package printer

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"strconv"
)

// tenant is an interpreted type with a String method, which fmt must call.
type tenant struct{ name string }

func (t tenant) String() string { return "tenant " + t.name }

// Middleware prints to the site's log (fmt.Println, fmt.Printf, fmt.Print, println), reports
// what fmt.Scanln read and uses the generic packages cmp and slices.
func Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Println("println", tenant{"acme"})
		fmt.Printf("printf %s %d\n", tenant{"beta"}, 7)
		fmt.Print("print ", r.URL.Path, "\n")
		println("builtin")
		var s string
		_, err := fmt.Scanln(&s)
		w.Header().Set("X-Scan", fmt.Sprint(err))
		xs := []int{3, 1, 2}
		w.Header().Set("X-Generic", strconv.Itoa(slices.Index(xs, 2))+" "+strconv.Itoa(cmp.Compare(2, 1)))
		next.ServeHTTP(w, r)
	})
}
