package evloop

import (
	"bytes"
	"errors"
	"strconv"
)

var crlfcrlf = []byte("\r\n\r\n")

// maxHead bounds a request or response head (request line or status line plus fields).
const maxHead = 64 << 10

// reqInfo is what the loop needs to know about a client request.
type reqInfo struct {
	head          bool  // method HEAD: the response has no body
	contentLength int64 // request body bytes (0 without Content-Length)
	close         bool  // the client sent Connection: close
}

// statusError is a request the proxy refuses with status.
type statusError int

// Error names the status the loop refuses the request with.
func (e statusError) Error() string { return "refused with " + strconv.Itoa(int(e)) }

// hopByHop reports whether name is a hop-by-hop field the proxy does not forward.
func hopByHop(name []byte) bool {
	for _, h := range [...]string{"Connection", "Keep-Alive", "Proxy-Connection", "TE", "Upgrade", "Transfer-Encoding"} {
		if len(name) == len(h) && bytes.EqualFold(name, []byte(h)) {
			return true
		}
	}
	return false
}

// isToken reports whether p is a non-empty RFC 9110 token.
func isToken(p []byte) bool {
	if len(p) == 0 {
		return false
	}
	for _, c := range p {
		if c <= ' ' || c >= 0x7f || bytes.IndexByte([]byte(`"(),/:;<=>?@[\]{}`), c) >= 0 {
			return false
		}
	}
	return true
}

// field is one header line split into name and trimmed value.
type field struct{ name, value []byte }

// splitFields splits the field lines of a head (everything after the first line, without
// the final empty line) and checks each one's syntax.
func splitFields(lines []byte, each func(f field, line []byte) error) error {
	for len(lines) > 0 {
		i := bytes.Index(lines, []byte("\r\n"))
		if i < 0 {
			return errors.New("field line without CRLF")
		}
		line := lines[:i+2]
		lines = lines[i+2:]
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || !isToken(line[:colon]) {
			return errors.New("malformed field line")
		}
		v := bytes.Trim(line[colon+1:len(line)-2], " \t")
		if bytes.ContainsAny(v, "\r\n\x00") {
			return errors.New("control character in field value")
		}
		if err := each(field{line[:colon], v}, line); err != nil {
			return err
		}
	}
	return nil
}

// hasToken reports whether the comma-separated list v contains tok (case-insensitive).
func hasToken(v []byte, tok string) bool {
	for _, part := range bytes.Split(v, []byte(",")) {
		if bytes.EqualFold(bytes.TrimSpace(part), []byte(tok)) {
			return true
		}
	}
	return false
}

// parseContentLength parses a Content-Length value: digits only, at most 18 of them.
func parseContentLength(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// rewriteRequest checks the request head (request line through the empty line) and appends
// to dst what goes upstream: the request line and every field except the hop-by-hop ones.
// Only HTTP/1.1 requests with exactly one Host and no Transfer-Encoding are accepted; the
// status of a refusal is a statusError.
func rewriteRequest(dst, head []byte) ([]byte, reqInfo, error) {
	var info reqInfo
	eol := bytes.Index(head, []byte("\r\n"))
	line := head[:eol]
	sp1 := bytes.IndexByte(line, ' ')
	sp2 := bytes.LastIndexByte(line, ' ')
	if sp1 <= 0 || sp2 <= sp1+1 || !isToken(line[:sp1]) {
		return dst, info, statusError(400)
	}
	target := line[sp1+1 : sp2]
	for _, c := range target {
		if c <= ' ' || c == 0x7f {
			return dst, info, statusError(400)
		}
	}
	if string(line[sp2+1:]) != "HTTP/1.1" {
		return dst, info, statusError(505)
	}
	info.head = string(line[:sp1]) == "HEAD"
	dst = append(dst, head[:eol+2]...)
	hosts, lengths := 0, 0
	err := splitFields(head[eol+2:len(head)-2], func(f field, raw []byte) error {
		switch {
		case bytes.EqualFold(f.name, []byte("Host")):
			hosts++
		case bytes.EqualFold(f.name, []byte("Content-Length")):
			n, ok := parseContentLength(f.value)
			if !ok || (lengths > 0 && n != info.contentLength) {
				return statusError(400)
			}
			lengths++
			info.contentLength = n
		case bytes.EqualFold(f.name, []byte("Transfer-Encoding")):
			return statusError(501)
		case bytes.EqualFold(f.name, []byte("Connection")):
			info.close = info.close || hasToken(f.value, "close")
		}
		if !hopByHop(f.name) {
			dst = append(dst, raw...)
		}
		return nil
	})
	if err != nil {
		var se statusError
		if errors.As(err, &se) {
			return dst, info, se
		}
		return dst, info, statusError(400)
	}
	if hosts != 1 {
		return dst, info, statusError(400)
	}
	return append(dst, "\r\n"...), info, nil
}

// framing is how a response body ends.
type framing uint8

const (
	frameNone       framing = iota // no body (HEAD, 1xx, 204, 304)
	frameLength                    // Content-Length bytes
	frameChunked                   // chunked transfer coding, up to the last chunk and trailers
	frameUntilClose                // until the upstream closes
)

// respInfo is what the loop needs to know about an upstream response head.
type respInfo struct {
	status        int
	interim       bool // 1xx other than 101: another head follows
	frame         framing
	contentLength int64
	reusable      bool // the upstream connection may serve another request
}

// rewriteResponse checks an upstream response head and appends to dst what goes to the
// client: the status line and every field except the hop-by-hop ones (Transfer-Encoding
// stays: a chunked body is relayed as it is), plus Connection: close when closeClient.
func rewriteResponse(dst, head []byte, reqHead, closeClient bool) ([]byte, respInfo, error) {
	var info respInfo
	eol := bytes.Index(head, []byte("\r\n"))
	line := head[:eol]
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' || (len(line) > 12 && line[12] != ' ') {
		return dst, info, errors.New("malformed status line")
	}
	code, err := strconv.Atoi(string(line[9:12]))
	if err != nil || code < 100 || code > 999 {
		return dst, info, errors.New("malformed status code")
	}
	info.status = code
	info.reusable = line[7] == '1'
	if code == 101 {
		return dst, info, errors.New("101 Switching Protocols without an Upgrade request")
	}
	info.interim = code < 200
	dst = append(dst, head[:eol+2]...)
	chunked, lengths, otherCoding := false, 0, false
	err = splitFields(head[eol+2:len(head)-2], func(f field, raw []byte) error {
		switch {
		case bytes.EqualFold(f.name, []byte("Content-Length")):
			n, ok := parseContentLength(f.value)
			if !ok || (lengths > 0 && n != info.contentLength) {
				return errors.New("bad Content-Length")
			}
			lengths++
			info.contentLength = n
		case bytes.EqualFold(f.name, []byte("Transfer-Encoding")):
			codings := bytes.Split(f.value, []byte(","))
			chunked = bytes.EqualFold(bytes.TrimSpace(codings[len(codings)-1]), []byte("chunked"))
			otherCoding = !chunked
			dst = append(dst, raw...)
			return nil
		case bytes.EqualFold(f.name, []byte("Connection")):
			if hasToken(f.value, "close") {
				info.reusable = false
			}
		}
		if !hopByHop(f.name) {
			dst = append(dst, raw...)
		}
		return nil
	})
	if err != nil {
		return dst, info, err
	}
	if (chunked || otherCoding) && lengths > 0 {
		return dst, info, errors.New("both Transfer-Encoding and Content-Length")
	}
	switch {
	case info.interim || reqHead || code == 204 || code == 304:
		info.frame = frameNone
	case chunked:
		info.frame = frameChunked
	case otherCoding:
		info.frame, info.reusable = frameUntilClose, false
	case lengths > 0:
		info.frame = frameLength
	default:
		info.frame, info.reusable = frameUntilClose, false
	}
	if (closeClient || info.frame == frameUntilClose) && !info.interim {
		dst = append(dst, "Connection: close\r\n"...)
	}
	return append(dst, "\r\n"...), info, nil
}

// chunkScanner finds the end of a chunked body (RFC 9112 section 7.1) fed in pieces,
// without decoding it: the body is relayed as it is.
type chunkScanner struct {
	state  uint8
	size   int64 // chunk size being read, then data bytes left
	digits int
	line   int // bytes of the current size or trailer line
}

const (
	csSize      = iota // hex digits of a chunk size
	csBWS              // whitespace after the size, before ';' or CR
	csExt              // chunk extension up to CR
	csSizeLF           // LF after a size line
	csData             // chunk data
	csDataCR           // CR after chunk data
	csDataLF           // LF after chunk data
	csTrailer          // start of a trailer line (or the final CRLF)
	csTrailerLn        // inside a trailer field line
	csTrailerLF        // LF that ends a trailer line
	csEndLF            // LF of the final CRLF
	csDone
)

// maxChunkLine bounds a chunk-size line with its extensions and each trailer line.
const maxChunkLine = 1024

var errChunk = errors.New("malformed chunked body")

// scan consumes p and returns how many of its bytes belong to the body (all of them unless
// the body ends inside p), and whether the body has ended.
func (s *chunkScanner) scan(p []byte) (int, bool, error) {
	i := 0
	for i < len(p) {
		c := p[i]
		switch s.state {
		case csSize:
			v, ok := unhex(c)
			switch {
			case ok:
				if s.digits == 15 {
					return i, false, errChunk
				}
				s.size, s.digits = s.size<<4|int64(v), s.digits+1
			case s.digits > 0 && c == ';':
				s.state = csExt
			case s.digits > 0 && (c == ' ' || c == '\t'):
				s.state = csBWS
			case s.digits > 0 && c == '\r':
				s.state = csSizeLF
			default:
				return i, false, errChunk
			}
		case csBWS:
			switch c {
			case ' ', '\t':
			case ';':
				s.state = csExt
			case '\r':
				s.state = csSizeLF
			default:
				return i, false, errChunk
			}
		case csExt:
			if c == '\r' {
				s.state = csSizeLF
			} else if c == '\n' || c == 0 {
				return i, false, errChunk
			}
		case csSizeLF:
			if c != '\n' {
				return i, false, errChunk
			}
			s.line = -1
			if s.size == 0 {
				s.state = csTrailer
			} else {
				s.state = csData
			}
		case csData:
			n := int(min(int64(len(p)-i), s.size))
			s.size -= int64(n)
			i += n
			if s.size == 0 {
				s.state = csDataCR
			}
			continue
		case csDataCR:
			if c != '\r' {
				return i, false, errChunk
			}
			s.state = csDataLF
		case csDataLF:
			if c != '\n' {
				return i, false, errChunk
			}
			s.state, s.size, s.digits, s.line = csSize, 0, 0, -1
		case csTrailer:
			if c == '\r' {
				s.state = csEndLF
			} else if c == '\n' {
				return i, false, errChunk
			} else {
				s.state, s.line = csTrailerLn, 0
			}
		case csTrailerLn:
			if c == '\r' {
				s.state = csTrailerLF
			} else if c == '\n' || c == 0 {
				return i, false, errChunk
			}
		case csTrailerLF:
			if c != '\n' {
				return i, false, errChunk
			}
			s.state, s.line = csTrailer, -1
		case csEndLF:
			if c != '\n' {
				return i, false, errChunk
			}
			s.state = csDone
			return i + 1, true, nil
		case csDone:
			return i, true, nil
		}
		s.line++
		if s.line > maxChunkLine {
			return i, false, errChunk
		}
		i++
	}
	return i, s.state == csDone, nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// errorResponse is the whole answer the proxy sends when it refuses a request or has no
// upstream answer; the client connection closes after it.
func errorResponse(dst []byte, status int) []byte {
	text := map[int]string{400: "Bad Request", 431: "Request Header Fields Too Large", 501: "Not Implemented",
		502: "Bad Gateway", 505: "HTTP Version Not Supported"}[status]
	dst = append(dst, "HTTP/1.1 "...)
	dst = strconv.AppendInt(dst, int64(status), 10)
	dst = append(dst, ' ')
	dst = append(dst, text...)
	return append(dst, "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"...)
}
