package accesslog

import (
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/conduitproxy/conduit/core"
)

// entry is what a line is rendered from.
type entry struct {
	r          *http.Request
	st         *core.RequestState
	end        time.Time
	stripQuery bool
}

func (e *entry) status() int {
	if s := e.st.Writer.Status; s != 0 {
		return s
	}
	return http.StatusOK
}

// target is the request target as the client sent it (before any rewrite), without the query
// when stripQuery is set, and with the values of credential parameters (core.CredentialParams)
// replaced by core.Redacted.
func (e *entry) target() string {
	t := e.r.RequestURI
	if t == "" {
		t = e.r.URL.Path
		if e.r.URL.RawQuery != "" && !e.stripQuery {
			return core.RedactTarget(e.r.URL.RequestURI())
		}
	}
	if e.stripQuery {
		if i := strings.IndexByte(t, '?'); i >= 0 {
			t = t[:i]
		}
		return t
	}
	return core.RedactTarget(t)
}

func (e *entry) duration() time.Duration { return e.end.Sub(e.st.Start) }

func appendIP(b []byte, e *entry) []byte {
	ip := core.ClientIP(e.r)
	if !ip.IsValid() {
		return append(b, '-')
	}
	return ip.AppendTo(b)
}

// appendMS appends d in milliseconds with three decimals.
func appendMS(b []byte, d time.Duration) []byte {
	us := d.Microseconds()
	if us < 0 {
		us = 0
	}
	b = strconv.AppendInt(b, us/1000, 10)
	frac := us % 1000
	b = append(b, '.', byte('0'+frac/100), byte('0'+frac/10%10), byte('0'+frac%10))
	return b
}

// appendQuoted appends s for a double-quoted Apache field: `"` and `\` are backslash-escaped,
// control and non-ASCII bytes become \xHH (what Apache and nginx do), so a line cannot be
// forged by a request.
func appendQuoted(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20 || c >= 0x7f:
			b = append(b, '\\', 'x', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return b
}

// appendField appends an unquoted field ("-" when empty), escaped like appendQuoted plus
// spaces, so that fields stay separable.
func appendField(b []byte, s string) []byte {
	if s == "" {
		return append(b, '-')
	}
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' {
			b = append(b, `\x20`...)
			continue
		}
		b = appendQuoted(b, s[i:i+1])
	}
	return b
}

// appendCommon renders the Common Log Format:
// 127.0.0.1 - user [10/Oct/2000:13:55:36 +0000] "GET /x HTTP/1.1" 200 2326
func appendCommon(b []byte, e *entry) []byte { return append(appendCLF(b, e), '\n') }

func appendCLF(b []byte, e *entry) []byte {
	b = appendIP(b, e)
	b = append(b, " - "...)
	b = appendField(b, e.st.Identity)
	b = append(b, " ["...)
	b = e.st.Start.AppendFormat(b, "02/Jan/2006:15:04:05 -0700")
	b = append(b, `] "`...)
	b = appendQuoted(b, e.r.Method)
	b = append(b, ' ')
	b = appendQuoted(b, e.target())
	b = append(b, ' ')
	b = appendQuoted(b, e.r.Proto)
	b = append(b, `" `...)
	b = strconv.AppendInt(b, int64(e.status()), 10)
	b = append(b, ' ')
	if n := e.st.Writer.Bytes; n > 0 {
		b = strconv.AppendInt(b, n, 10)
	} else {
		b = append(b, '-')
	}
	return b
}

// appendCombined is Common plus "Referer" "User-Agent".
func appendCombined(b []byte, e *entry) []byte {
	b = appendCLF(b, e)
	b = append(b, ` "`...)
	b = appendQuoted(b, headerOr(e.r, "Referer"))
	b = append(b, `" "`...)
	b = appendQuoted(b, headerOr(e.r, "User-Agent"))
	return append(b, "\"\n"...)
}

func headerOr(r *http.Request, name string) string {
	if v := r.Header[name]; len(v) > 0 && v[0] != "" {
		return v[0]
	}
	return "-"
}

// appendShort renders `ip user METHOD /x HTTP/1.1 STATUS bytes - 1.234 ms`.
func appendShort(b []byte, e *entry) []byte {
	b = appendIP(b, e)
	b = append(b, ' ')
	b = appendField(b, e.st.Identity)
	b = append(b, ' ')
	b = appendField(b, e.r.Method)
	b = append(b, ' ')
	b = appendField(b, e.target())
	b = append(b, ' ')
	b = appendField(b, e.r.Proto)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(e.status()), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, e.st.Writer.Bytes, 10)
	b = append(b, " - "...)
	b = appendMS(b, e.duration())
	return append(b, " ms\n"...)
}

// ANSI colours of the dev format's status: 5xx red, 4xx yellow, 3xx cyan, 2xx green.
const (
	colorRed    = "\x1b[31m"
	colorYellow = "\x1b[33m"
	colorCyan   = "\x1b[36m"
	colorGreen  = "\x1b[32m"
	colorReset  = "\x1b[0m"
)

// appendDev renders `GET /x 200 1.234 ms - 512` (morgan's dev format).
func appendDev(b []byte, e *entry, color bool) []byte {
	b = appendField(b, e.r.Method)
	b = append(b, ' ')
	b = appendField(b, e.target())
	b = append(b, ' ')
	status := e.status()
	if color {
		switch {
		case status >= 500:
			b = append(b, colorRed...)
		case status >= 400:
			b = append(b, colorYellow...)
		case status >= 300:
			b = append(b, colorCyan...)
		default:
			b = append(b, colorGreen...)
		}
	}
	b = strconv.AppendInt(b, int64(status), 10)
	if color {
		b = append(b, colorReset...)
	}
	b = append(b, ' ')
	b = appendMS(b, e.duration())
	b = append(b, " ms - "...)
	b = strconv.AppendInt(b, e.st.Writer.Bytes, 10)
	return append(b, '\n')
}

// appendJSON renders the fields docs/observability.md lists: time, method, path, status, bytes, duration_ms,
// upstream_ms (absent for local handlers), ip, request_id, upstream (null for local handlers).
func appendJSON(b []byte, e *entry) []byte {
	b = append(b, `{"time":"`...)
	b = e.st.Start.UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
	b = append(b, `","method":`...)
	b = appendJSONString(b, e.r.Method)
	b = append(b, `,"path":`...)
	b = appendJSONString(b, e.target())
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(e.status()), 10)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, e.st.Writer.Bytes, 10)
	b = append(b, `,"duration_ms":`...)
	b = appendMS(b, e.duration())
	if e.st.Upstream != "" {
		b = append(b, `,"upstream_ms":`...)
		b = appendMS(b, e.st.UpstreamDuration)
	}
	b = append(b, `,"ip":"`...)
	b = appendIP(b, e)
	b = append(b, `","request_id":`...)
	b = appendJSONString(b, e.st.ID)
	b = append(b, `,"upstream":`...)
	if e.st.Upstream != "" {
		b = appendJSONString(b, e.st.Upstream)
	} else {
		b = append(b, "null"...)
	}
	return append(b, "}\n"...)
}

// appendJSONString appends s as a JSON string; invalid UTF-8 becomes U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20 || c == 0x7f:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else if r == '\u2028' || r == '\u2029' {
			b = append(b, `\u202`...)
			b = append(b, hex[r&0xf])
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
