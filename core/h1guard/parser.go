package h1guard

import "math"

// Byte classes. The table is computed once and never written afterwards.
const (
	cToken  = 1 << iota // tchar (RFC 9110 5.6.2)
	cVChar              // field-vchar: VCHAR / obs-text
	cTarget             // request-target byte: VCHAR (0x21-0x7E)
	cHex                // HEXDIG
	cHost               // byte allowed in a Host value / absolute-form authority
	cQdtext             // qdtext (RFC 9110 5.6.4)
)

var class = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		b := byte(c)
		isAlnum := 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9'
		if isAlnum || b != 0 && indexByte("!#$%&'*+-.^_`|~", b) {
			t[c] |= cToken
		}
		if b > 0x20 && b != 0x7f {
			t[c] |= cVChar
		}
		if b > 0x20 && b < 0x7f {
			t[c] |= cTarget
		}
		if '0' <= b && b <= '9' || 'a' <= b && b <= 'f' || 'A' <= b && b <= 'F' {
			t[c] |= cHex
		}
		if isAlnum || b != 0 && indexByte("-._~!$&'()*+,;=:[]%", b) {
			t[c] |= cHost
		}
		if b == '\t' || b == ' ' || b == 0x21 || b >= 0x23 && b <= 0x5b || b >= 0x5d && b <= 0x7e || b >= 0x80 {
			t[c] |= cQdtext
		}
	}
	return t
}()

func indexByte(s string, b byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == b {
			return true
		}
	}
	return false
}

// Parser states.
const (
	sStart uint8 = iota // at a message boundary
	sMethod
	sTargetStart
	sTarget
	sPct1 // first hex digit after '%'
	sPct2
	sScheme
	sSlash1
	sSlash2
	sAuthority
	sAsterisk
	sVersion
	sPreface
	sReqLineLF
	sLineStart // start of a header (or trailer) line
	sName
	sOWS
	sValue
	sValueLF
	sHeadLF
	sBody // Content-Length body
	sChunkSize
	sChunkSizeMore
	sExtNameStart
	sExtName
	sExtValStart
	sExtTokenVal
	sExtQuoted
	sExtQuotedPair
	sExtAfterQuoted
	sChunkLF
	sChunkData
	sChunkDataCR
	sChunkDataLF
)

// Header kinds the parser cares about.
const (
	kOther uint8 = iota
	kContentLength
	kTransferEncoding
	kHost
	kConnection
	kUpgrade
	kNoTrailer // allowed in a header section, forbidden in trailers
)

// Target forms.
const (
	fOrigin uint8 = iota
	fAbsolute
	fAsterisk
)

// Verdicts of feed.
const (
	vOK   = iota // every byte is valid so far
	vBad         // violation at the returned offset
	vPass        // switch to pass-through at the returned offset
)

const (
	maxName      = 32
	maxVal       = 512
	maxAuthority = 300
	maxExt       = 1024 // net/http gives up on chunk lines of 4 KiB
	maxCLDigits  = 18   // fits int64
	maxHexDigits = 16
	maxTrailer   = 2048 // net/http limits a trailer section to its 4 KiB read buffer
)

const (
	h2Preface     = "HTTP/2.0\r\n\r\nSM\r\n\r\n"
	http1Prefix   = "HTTP/1."
	tlsHandshake  = 0x16
	defaultReqMax = 8 << 10
)

// parser is a streaming HTTP/1.1 request-framing validator. It holds no pointers and
// allocates nothing; the zero value (after init) is ready at a connection start.
type parser struct {
	maxLine    int
	maxHeader  int
	maxHeaders int

	state uint8
	reqs  uint64 // messages fully received
	heads uint64 // request heads fully received
	any   bool   // any byte seen on the connection

	afterUpgrade bool // the previous message asked for an upgrade

	// current message
	lineLen   int
	headBytes int
	nHeaders  int
	trailer   bool
	method    [8]byte
	methodLen int
	form      uint8
	minor     byte
	idx       int
	scheme    [6]byte
	schemeLen int
	authority [maxAuthority]byte
	authLen   int
	kind      uint8
	name      [maxName]byte
	nameLen   int
	val       [maxVal]byte
	valLen    int
	seenCL    bool
	seenTE    bool
	seenHost  bool
	chunked   bool
	upgrade   bool
	connUpg   bool
	cl        uint64
	remaining uint64
	digits    int
	extLen    int

	// violation
	status int
	reason string
}

func (p *parser) init(o *Options) {
	p.maxLine = o.MaxRequestLineBytes
	p.maxHeader = o.MaxHeaderBytes
	p.maxHeaders = o.MaxHeaders
}

func (p *parser) fail(status int, reason string) uint8 {
	p.status, p.reason = status, reason
	return vBad
}

func (p *parser) beginMessage() {
	p.lineLen, p.headBytes, p.nHeaders = 0, 0, 0
	p.trailer = false
	p.methodLen, p.form, p.idx, p.schemeLen, p.authLen = 0, fOrigin, 0, 0, 0
	p.seenCL, p.seenTE, p.seenHost, p.chunked, p.upgrade, p.connUpg = false, false, false, false, false, false
	p.cl, p.remaining = 0, 0
}

func (p *parser) complete() {
	p.reqs++
	p.afterUpgrade = p.upgrade && p.connUpg
	p.state = sStart
}

func (p *parser) inBody() bool { return p.state >= sBody || p.trailer }

func (p *parser) isMethod(m string) bool {
	return p.methodLen == len(m) && string(p.method[:p.methodLen]) == m
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + ('a' - 'A')
	}
	return c
}

// feed validates b, the next bytes of the connection. It returns vOK and len(b), or vBad
// with the offset of the offending byte (the bytes before it are valid), or vPass with the
// offset from which the connection is no longer HTTP/1.x framing.
func (p *parser) feed(b []byte) (int, uint8) {
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch p.state {
		case sStart:
			first := !p.any
			p.any = true
			if first && c == tlsHandshake {
				return i, vPass
			}
			if p.afterUpgrade && class[c]&cToken == 0 {
				return i, vPass
			}
			p.beginMessage()
			if class[c]&cToken == 0 {
				return i, p.fail(400, "invalid request line")
			}
			p.method[0] = c
			p.methodLen = 1
			p.lineLen = 1
			p.state = sMethod
			continue
		case sBody:
			n := uint64(len(b) - i)
			if n >= p.remaining {
				i += int(p.remaining) - 1
				p.remaining = 0
				p.complete()
			} else {
				p.remaining -= n
				i = len(b) - 1
			}
			continue
		case sChunkData:
			n := uint64(len(b) - i)
			if n >= p.remaining {
				i += int(p.remaining) - 1
				p.remaining = 0
				p.state = sChunkDataCR
			} else {
				p.remaining -= n
				i = len(b) - 1
			}
			continue
		case sValue:
			// Fast path over the value bytes.
			j := i
			store := p.kind != kOther && p.kind != kNoTrailer
			for j < len(b) && (class[b[j]]&cVChar != 0 || b[j] == ' ' || b[j] == '\t') {
				j++
			}
			if store {
				for k := i; k < j; k++ {
					if p.valLen < maxVal {
						p.val[p.valLen] = b[k]
					}
					p.valLen++
				}
			}
			p.headBytes += j - i
			if p.headBytes > p.maxHeader || p.trailer && p.headBytes > maxTrailer {
				return i, p.fail(431, "header section too large")
			}
			i = j
			if i == len(b) {
				return len(b), vOK
			}
			c = b[i]
			p.headBytes++
			switch c {
			case '\r':
				p.state = sValueLF
			case '\n':
				return i, p.fail(400, "bare LF in header section")
			default:
				return i, p.fail(400, "invalid byte in header value")
			}
			continue
		}

		// Request line states.
		if p.state < sLineStart {
			p.lineLen++
			if p.lineLen > p.maxLine {
				return i, p.fail(414, "request line too long")
			}
		} else if p.state <= sHeadLF {
			p.headBytes++
			if p.headBytes > p.maxHeader || p.trailer && p.headBytes > maxTrailer {
				return i, p.fail(431, "header section too large")
			}
		} else if p.state >= sExtNameStart && p.state <= sExtAfterQuoted {
			p.extLen++
			if p.extLen > maxExt {
				return i, p.fail(400, "chunk extension too long")
			}
		}

		switch p.state {
		case sMethod:
			switch {
			case class[c]&cToken != 0:
				if p.methodLen < len(p.method) {
					p.method[p.methodLen] = c
				}
				p.methodLen++
			case c == ' ':
				if p.isMethod("CONNECT") {
					return i, p.fail(501, "CONNECT is not supported")
				}
				p.state = sTargetStart
			default:
				return i, p.fail(400, "invalid method")
			}
		case sTargetStart:
			switch {
			case c == '/':
				p.form = fOrigin
				p.state = sTarget
			case c == '*':
				p.form = fAsterisk
				p.state = sAsterisk
			case 'a' <= lower(c) && lower(c) <= 'z':
				p.form = fAbsolute
				p.scheme[0] = lower(c)
				p.schemeLen = 1
				p.state = sScheme
			default:
				return i, p.fail(400, "invalid request-target")
			}
		case sScheme:
			switch {
			case 'a' <= lower(c) && lower(c) <= 'z':
				if p.schemeLen == len(p.scheme) {
					return i, p.fail(400, "unsupported URI scheme")
				}
				p.scheme[p.schemeLen] = lower(c)
				p.schemeLen++
			case c == ':':
				if s := string(p.scheme[:p.schemeLen]); s != "http" && s != "https" {
					return i, p.fail(400, "unsupported URI scheme")
				}
				p.state = sSlash1
			default:
				return i, p.fail(400, "invalid request-target")
			}
		case sSlash1, sSlash2:
			if c != '/' {
				return i, p.fail(400, "invalid absolute-form request-target")
			}
			p.state++
		case sAuthority:
			switch {
			case c == '/' || c == '?' || c == ' ':
				if p.authLen == 0 {
					return i, p.fail(400, "empty authority in request-target")
				}
				if c == ' ' {
					p.state, p.idx = sVersion, 0
				} else {
					p.state = sTarget
				}
			case class[c]&cHost != 0 && c != '%':
				if p.authLen == maxAuthority {
					return i, p.fail(400, "authority too long")
				}
				p.authority[p.authLen] = lower(c)
				p.authLen++
			default:
				return i, p.fail(400, "invalid authority in request-target")
			}
		case sTarget:
			switch {
			case c == ' ':
				p.state, p.idx = sVersion, 0
			case c == '%':
				p.state = sPct1
			case class[c]&cTarget != 0:
			default:
				return i, p.fail(400, "invalid byte in request-target")
			}
		case sPct1, sPct2:
			if class[c]&cHex == 0 {
				return i, p.fail(400, "invalid percent-encoding in request-target")
			}
			if p.state == sPct1 {
				p.state = sPct2
			} else {
				p.state = sTarget
			}
		case sAsterisk:
			if c != ' ' {
				return i, p.fail(400, "invalid request-target")
			}
			if p.isMethod("PRI") && p.reqs == 0 {
				p.state, p.idx = sPreface, 0
				continue
			}
			if !p.isMethod("OPTIONS") {
				return i, p.fail(400, "asterisk-form is only allowed with OPTIONS")
			}
			p.state, p.idx = sVersion, 0
		case sPreface:
			if c != h2Preface[p.idx] {
				return i, p.fail(400, "invalid HTTP/2 connection preface")
			}
			p.idx++
			if p.idx == len(h2Preface) {
				return i + 1, vPass
			}
		case sVersion:
			switch {
			case p.idx < len(http1Prefix):
				if c != http1Prefix[p.idx] {
					return i, p.fail(400, "unsupported HTTP version")
				}
				p.idx++
			case p.idx == len(http1Prefix):
				if c != '0' && c != '1' {
					return i, p.fail(400, "unsupported HTTP version")
				}
				p.minor = c
				p.idx++
			default:
				if c != '\r' {
					return i, p.fail(400, "invalid request line")
				}
				p.state = sReqLineLF
			}
		case sReqLineLF:
			if c != '\n' {
				return i, p.fail(400, "bare CR in request line")
			}
			p.state = sLineStart
		case sLineStart:
			switch {
			case class[c]&cToken != 0:
				p.name[0] = lower(c)
				p.nameLen = 1
				p.state = sName
			case c == '\r':
				p.state = sHeadLF
			case c == ' ' || c == '\t':
				return i, p.fail(400, "obsolete line folding")
			case c == '\n':
				return i, p.fail(400, "bare LF in header section")
			case c == ':':
				return i, p.fail(400, "empty header name")
			default:
				return i, p.fail(400, "invalid header name")
			}
		case sName:
			switch {
			case class[c]&cToken != 0:
				if p.nameLen < maxName {
					p.name[p.nameLen] = lower(c)
				}
				p.nameLen++
			case c == ':':
				p.kind = p.classify()
				if p.trailer && p.kind != kOther {
					return i, p.fail(400, "field not allowed in trailer section")
				}
				p.valLen = 0
				p.state = sOWS
			case c == ' ' || c == '\t':
				return i, p.fail(400, "whitespace before colon in header")
			default:
				return i, p.fail(400, "invalid header name")
			}
		case sOWS:
			switch {
			case c == ' ' || c == '\t':
			case c == '\r':
				p.state = sValueLF
			case class[c]&cVChar != 0:
				if p.kind != kOther && p.kind != kNoTrailer {
					p.val[0] = c
					p.valLen = 1
				}
				p.state = sValue
			case c == '\n':
				return i, p.fail(400, "bare LF in header section")
			default:
				return i, p.fail(400, "invalid byte in header value")
			}
		case sValueLF:
			if c != '\n' {
				return i, p.fail(400, "bare CR in header section")
			}
			if v := p.finishField(); v != vOK {
				return i, v
			}
			p.state = sLineStart
		case sHeadLF:
			if c != '\n' {
				return i, p.fail(400, "bare CR in header section")
			}
			if p.trailer {
				p.complete()
				continue
			}
			if v := p.finishHead(); v != vOK {
				return i, v
			}
		case sChunkSize, sChunkSizeMore:
			if class[c]&cHex != 0 {
				if p.state == sChunkSize {
					p.remaining, p.digits, p.extLen = 0, 0, 0
					p.state = sChunkSizeMore
				}
				p.digits++
				if p.digits > maxHexDigits {
					return i, p.fail(400, "chunk size too long")
				}
				p.remaining = p.remaining<<4 | uint64(unhex(c))
				continue
			}
			if p.state == sChunkSize {
				return i, p.fail(400, "invalid chunk size")
			}
			if p.remaining > math.MaxInt64 {
				return i, p.fail(400, "chunk size too large")
			}
			switch c {
			case '\r':
				p.state = sChunkLF
			case ';':
				p.state = sExtNameStart
			default:
				return i, p.fail(400, "invalid chunk size")
			}
		case sExtNameStart:
			switch {
			case class[c]&cToken != 0:
				p.state = sExtName
			default:
				return i, p.fail(400, "invalid chunk extension")
			}
		case sExtName:
			switch {
			case class[c]&cToken != 0:
			case c == '=':
				p.state = sExtValStart
			case c == ';':
				p.state = sExtNameStart
			case c == '\r':
				p.state = sChunkLF
			default:
				return i, p.fail(400, "invalid chunk extension")
			}
		case sExtValStart:
			switch {
			case c == '"':
				p.state = sExtQuoted
			case class[c]&cToken != 0:
				p.state = sExtTokenVal
			default:
				return i, p.fail(400, "invalid chunk extension")
			}
		case sExtTokenVal:
			switch {
			case class[c]&cToken != 0:
			case c == ';':
				p.state = sExtNameStart
			case c == '\r':
				p.state = sChunkLF
			default:
				return i, p.fail(400, "invalid chunk extension")
			}
		case sExtQuoted:
			switch {
			case c == '"':
				p.state = sExtAfterQuoted
			case c == '\\':
				p.state = sExtQuotedPair
			case class[c]&cQdtext != 0:
			default:
				return i, p.fail(400, "invalid chunk extension")
			}
		case sExtQuotedPair:
			if c != '\t' && c != ' ' && class[c]&cVChar == 0 {
				return i, p.fail(400, "invalid chunk extension")
			}
			p.state = sExtQuoted
		case sExtAfterQuoted:
			switch c {
			case ';':
				p.state = sExtNameStart
			case '\r':
				p.state = sChunkLF
			default:
				return i, p.fail(400, "invalid chunk extension")
			}
		case sChunkLF:
			if c != '\n' {
				return i, p.fail(400, "bare CR in chunk line")
			}
			if p.remaining == 0 {
				p.trailer = true
				p.headBytes, p.nHeaders = 0, 0
				p.state = sLineStart
			} else {
				p.state = sChunkData
			}
		case sChunkDataCR:
			if c != '\r' {
				return i, p.fail(400, "missing CRLF after chunk data")
			}
			p.state = sChunkDataLF
		case sChunkDataLF:
			if c != '\n' {
				return i, p.fail(400, "missing CRLF after chunk data")
			}
			p.state = sChunkSize
		}
	}
	return len(b), vOK
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// classify maps the lower-cased field name to a kind.
func (p *parser) classify() uint8 {
	if p.nameLen > maxName {
		return kOther
	}
	switch string(p.name[:p.nameLen]) {
	case "content-length":
		return kContentLength
	case "transfer-encoding":
		return kTransferEncoding
	case "host":
		return kHost
	case "connection":
		return kConnection
	case "upgrade":
		return kUpgrade
	case "te", "trailer", "keep-alive", "proxy-connection", "expect", "max-forwards",
		"content-encoding", "content-type", "content-range", "range",
		"authorization", "proxy-authorization", "cache-control", "pragma":
		return kNoTrailer
	}
	return kOther
}

func isOWS(c byte) bool { return c == ' ' || c == '\t' }

// finishField is called at the end of a header or trailer line.
func (p *parser) finishField() uint8 {
	p.nHeaders++
	if p.nHeaders > p.maxHeaders {
		return p.fail(431, "too many header fields")
	}
	if p.kind == kOther || p.kind == kNoTrailer {
		return vOK
	}
	n := p.valLen
	if n > maxVal {
		if p.kind == kConnection {
			return vOK // too long to inspect: no upgrade detection
		}
		return p.fail(400, "header value too long")
	}
	for n > 0 && (p.val[n-1] == ' ' || p.val[n-1] == '\t' && p.kind != kContentLength && p.kind != kTransferEncoding) {
		n-- // trailing OWS; a trailing HTAB is refused in the framing headers (as llhttp does)
	}
	v := p.val[:n]
	switch p.kind {
	case kContentLength:
		if p.seenCL {
			return p.fail(400, "multiple Content-Length headers")
		}
		p.seenCL = true
		if n == 0 || n > maxCLDigits {
			return p.fail(400, "invalid Content-Length")
		}
		var x uint64
		for _, d := range v {
			if d < '0' || d > '9' {
				return p.fail(400, "invalid Content-Length")
			}
			x = x*10 + uint64(d-'0')
		}
		p.cl = x
	case kTransferEncoding:
		if p.seenTE {
			return p.fail(400, "multiple Transfer-Encoding headers")
		}
		p.seenTE = true
		if !equalFold(v, "chunked") {
			return p.fail(400, "unsupported Transfer-Encoding")
		}
		p.chunked = true
	case kHost:
		if p.seenHost {
			return p.fail(400, "multiple Host headers")
		}
		p.seenHost = true
		for _, d := range v {
			if class[d]&cHost == 0 {
				return p.fail(400, "invalid Host header")
			}
		}
		if p.form == fAbsolute {
			if n != p.authLen {
				return p.fail(400, "Host header does not match request-target authority")
			}
			for k, d := range v {
				if lower(d) != p.authority[k] {
					return p.fail(400, "Host header does not match request-target authority")
				}
			}
		}
	case kConnection:
		// Look for the "upgrade" token in the comma-separated list.
		start := 0
		for k := 0; k <= n; k++ {
			if k == n || v[k] == ',' {
				t := v[start:k]
				for len(t) > 0 && isOWS(t[0]) {
					t = t[1:]
				}
				for len(t) > 0 && isOWS(t[len(t)-1]) {
					t = t[:len(t)-1]
				}
				if equalFold(t, "upgrade") {
					p.connUpg = true
				}
				start = k + 1
			}
		}
	case kUpgrade:
		if n > 0 {
			p.upgrade = true
		}
	}
	return vOK
}

func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		if lower(b[i]) != s[i] {
			return false
		}
	}
	return true
}

// finishHead is called at the end of a request's header section.
func (p *parser) finishHead() uint8 {
	if p.minor == '1' && !p.seenHost {
		return p.fail(400, "missing Host header")
	}
	if p.seenTE && p.seenCL {
		return p.fail(400, "both Transfer-Encoding and Content-Length")
	}
	if p.seenTE && p.minor == '0' {
		return p.fail(400, "Transfer-Encoding in an HTTP/1.0 request")
	}
	p.heads++
	switch {
	case p.chunked:
		p.state = sChunkSize
	case p.cl > 0:
		p.remaining = p.cl
		p.state = sBody
	default:
		p.complete()
	}
	return vOK
}
