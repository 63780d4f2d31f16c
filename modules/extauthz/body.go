package extauthz

import (
	"bytes"
	"errors"
	"io"
	"net/http"

	"github.com/conduitproxy/conduit/core"
)

// bodyOptions is a provisioned withRequestBody.
type bodyOptions struct {
	max          int64
	allowPartial bool
	packAsBytes  bool
}

// read buffers up to max bytes of r's body for the CheckRequest and puts them back in front
// of the rest, so the upstream still receives the whole body. It returns a status to answer
// instead (413 for a body over max without allowPartial, 408 for a body that arrives too
// slowly, 400 for one that cannot be read), or 0. The read is bounded by the site's client
// body timeouts (global.clientBodyTimeoutMs, limits.minUploadRateBytesPerSec).
func (o *bodyOptions) read(r *http.Request) (body []byte, partial bool, status int) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return nil, false, 0
	}
	if r.ContentLength > o.max && !o.allowPartial {
		return nil, false, http.StatusRequestEntityTooLarge
	}
	size := o.max + 1
	if r.ContentLength > 0 && r.ContentLength < size {
		size = r.ContentLength + 1
	}
	buf := bytes.NewBuffer(make([]byte, 0, size))
	_, err := io.Copy(buf, io.LimitReader(r.Body, o.max+1))
	switch {
	case errors.Is(err, core.ErrUploadTooSlow):
		return nil, false, http.StatusRequestTimeout
	case err != nil:
		return nil, false, http.StatusBadRequest
	}
	all := buf.Bytes()
	if int64(len(all)) > o.max {
		if !o.allowPartial {
			return nil, false, http.StatusRequestEntityTooLarge
		}
		r.Body = &replayBody{Reader: io.MultiReader(bytes.NewReader(all), r.Body), Closer: r.Body}
		return all[:o.max], true, 0
	}
	r.Body = &replayBody{Reader: bytes.NewReader(all), Closer: r.Body}
	return all, false, 0
}

// replayBody reads the buffered start of a body, then the rest; Close closes the original.
type replayBody struct {
	io.Reader
	io.Closer
}
