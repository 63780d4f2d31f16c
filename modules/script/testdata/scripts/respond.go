package respond

import (
	"net/http"
	"strconv"

	"conduit/script"
)

// Response reads the upstream status and headers and changes the response headers.
func Response(r *http.Request, resp *script.Response) {
	resp.Header.Set("X-Upstream-Status", strconv.Itoa(resp.Status))
	resp.Header.Set("X-Seen-Server", resp.Header.Get("X-Upstream"))
	resp.Header.Del("X-Secret")
	m := resp.Config.Map()
	if v, ok := m["tag"].(string); ok {
		resp.Header.Add("X-Order", v)
	}
}
