package cache

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"sync/atomic"
	"time"
)

// Entry is one stored response: one variant of one primary key (see Key). Entries are
// immutable once built by Finish, so a store can hand the same Entry to any number of
// concurrent hits.
type Entry struct {
	// Key is the primary key the entry is stored under.
	Key string
	// Status is the response status code.
	Status int
	// Header holds the response header fields to replay (no Age, X-Cache, X-Request-Id or
	// Content-Length; Finish adds Content-Length).
	Header http.Header
	// Body is the whole response body.
	Body []byte
	// Vary holds the request header values this variant was stored for, one per name of
	// the response's Vary field and of the route's varyHeaders, sorted by name.
	Vary []VaryField
	// StoredAt is when the response was received (unix ns).
	StoredAt int64
	// InitialAge is the response's age when received (ns), RFC 9111 §4.2.3.
	InitialAge int64
	// FreshUntil is when the entry becomes stale (unix ns).
	FreshUntil int64
	// SWRUntil is the end of its stale-while-revalidate window (unix ns).
	SWRUntil int64
	// SIEUntil is the end of its stale-if-error window (unix ns).
	SIEUntil int64
	// AuthOK reports that the response may answer requests carrying Authorization
	// (public, s-maxage or must-revalidate; RFC 9111 §3.5).
	AuthOK bool

	hdrs       []headerKV // replay order, built by Finish
	etag       string
	size       int64
	ageCache   atomic.Pointer[ageValue]
	refreshing atomic.Bool
}

// VaryField is one request header a variant depends on.
type VaryField struct {
	// Name is the canonical header name.
	Name string
	// Values are the request's field values (nil when the request lacked the field).
	Values []string
}

type headerKV struct {
	k string
	v []string
}

type ageValue struct {
	secs int64
	v    []string
}

// Expires is when the entry is of no use any more, fresh or stale (unix ns).
func (e *Entry) Expires() int64 { return max(e.FreshUntil, e.SWRUntil, e.SIEUntil) }

// Size is the entry's approximate memory cost in bytes (set by Finish).
func (e *Entry) Size() int64 { return e.size }

// entryOverhead approximates the bookkeeping around one entry.
const entryOverhead = 256

// Finish prepares the entry for serving: the replay header list (with Content-Length) and
// its size. Call it once, before the entry is shared.
func (e *Entry) Finish() *Entry {
	keys := make([]string, 0, len(e.Header))
	for k := range e.Header {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	e.hdrs = make([]headerKV, 0, len(keys)+1)
	size := int64(len(e.Key) + len(e.Body) + entryOverhead)
	for _, k := range keys {
		v := slices.Clip(e.Header[k])
		e.hdrs = append(e.hdrs, headerKV{k, v})
		size += int64(len(k))
		for _, s := range v {
			size += int64(len(s)) + 16
		}
	}
	e.hdrs = append(e.hdrs, headerKV{"Content-Length", []string{strconv.Itoa(len(e.Body))}})
	for _, f := range e.Vary {
		size += int64(len(f.Name))
		for _, s := range f.Values {
			size += int64(len(s)) + 16
		}
	}
	if v := e.Header["Etag"]; len(v) == 1 {
		e.etag = v[0]
	}
	e.size = size
	return e
}

// age returns the Age field value at now, reusing the last rendering within a second.
func (e *Entry) age(now int64) []string {
	secs := (e.InitialAge + now - e.StoredAt) / int64(time.Second)
	if secs < 0 {
		secs = 0
	}
	if a := e.ageCache.Load(); a != nil && a.secs == secs {
		return a.v
	}
	a := &ageValue{secs: secs, v: []string{strconv.FormatInt(secs, 10)}}
	e.ageCache.Store(a)
	return a.v
}

// Matches reports whether the request headers select this variant (RFC 9111 §4.1): every
// nominated field has the same values, in the same order.
func (e *Entry) Matches(h http.Header) bool {
	for i := range e.Vary {
		f := &e.Vary[i]
		got := h[f.Name]
		if len(got) != len(f.Values) {
			return false
		}
		for j := range got {
			if got[j] != f.Values[j] {
				return false
			}
		}
	}
	return true
}

// VariantID is a stable string naming the variant (the Vary values), for stores that keep
// variants under one primary key.
func (e *Entry) VariantID() string {
	if len(e.Vary) == 0 {
		return "-"
	}
	b := make([]byte, 0, 64)
	for _, f := range e.Vary {
		b = append(b, f.Name...)
		b = append(b, 0)
		b = binary.AppendUvarint(b, uint64(len(f.Values)))
		for _, v := range f.Values {
			b = binary.AppendUvarint(b, uint64(len(v)))
			b = append(b, v...)
		}
	}
	return string(b)
}

// varyFields builds the variant description of a request for the nominated names.
func varyFields(names []string, h http.Header) []VaryField {
	if len(names) == 0 {
		return nil
	}
	out := make([]VaryField, len(names))
	for i, n := range names {
		out[i] = VaryField{Name: n, Values: slices.Clone(h[n])}
	}
	return out
}

// varyNames merges the route's varyHeaders (canonical, sorted) with the names of a response
// Vary field.
func varyNames(configured []string, vary []string) []string {
	if len(vary) == 0 {
		return configured
	}
	out := slices.Clone(configured)
	for _, line := range vary {
		for line != "" {
			var item string
			item, line = nextDirective(line)
			item = trimOWS(item)
			if item == "" {
				continue
			}
			n := textproto.CanonicalMIMEHeaderKey(item)
			if !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
	}
	slices.Sort(out)
	return out
}

func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// Encoding limits: a stored entry that claims more is corrupt.
const (
	entryMagic    = "CCE1"
	maxFields     = 1024
	maxValues     = 1024
	maxEntryBytes = 1 << 30
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// errCorrupt is returned by DecodeEntry for bytes that are not a whole, intact entry.
var errCorrupt = errors.New("cache entry is corrupt")

// Encode serialises the entry for the Redis and disk stores: a magic, a CRC-32C of the rest,
// then the fields. A torn or altered encoding fails DecodeEntry.
func (e *Entry) Encode() []byte {
	b := make([]byte, 8, 128+len(e.Key)+len(e.Body))
	copy(b, entryMagic)
	b = binary.AppendUvarint(b, uint64(e.Status))
	for _, v := range []int64{e.StoredAt, e.InitialAge, e.FreshUntil, e.SWRUntil, e.SIEUntil} {
		b = binary.AppendVarint(b, v)
	}
	flags := byte(0)
	if e.AuthOK {
		flags = 1
	}
	b = append(b, flags)
	b = appendString(b, e.Key)
	b = binary.AppendUvarint(b, uint64(len(e.Vary)))
	for _, f := range e.Vary {
		b = appendString(b, f.Name)
		b = appendStrings(b, f.Values)
	}
	keys := make([]string, 0, len(e.Header))
	for k := range e.Header {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = binary.AppendUvarint(b, uint64(len(keys)))
	for _, k := range keys {
		b = appendString(b, k)
		b = appendStrings(b, e.Header[k])
	}
	b = binary.AppendUvarint(b, uint64(len(e.Body)))
	b = append(b, e.Body...)
	binary.LittleEndian.PutUint32(b[4:8], crc32.Checksum(b[8:], crcTable))
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendStrings(b []byte, ss []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(ss)))
	for _, s := range ss {
		b = appendString(b, s)
	}
	return b
}

// DecodeEntry parses an encoding made by Encode and finishes the entry. It never panics;
// any damage gives an error.
func DecodeEntry(b []byte) (*Entry, error) {
	if len(b) < 8 || string(b[:4]) != entryMagic || len(b) > maxEntryBytes {
		return nil, errCorrupt
	}
	if crc32.Checksum(b[8:], crcTable) != binary.LittleEndian.Uint32(b[4:8]) {
		return nil, fmt.Errorf("%w: checksum mismatch", errCorrupt)
	}
	d := decoder{b: b[8:]}
	e := &Entry{}
	e.Status = int(d.uvarint(999))
	for _, p := range []*int64{&e.StoredAt, &e.InitialAge, &e.FreshUntil, &e.SWRUntil, &e.SIEUntil} {
		*p = d.varint()
	}
	e.AuthOK = d.byte() == 1
	e.Key = d.string()
	if n := d.uvarint(maxFields); n > 0 {
		e.Vary = make([]VaryField, n)
		for i := range e.Vary {
			e.Vary[i].Name = d.string()
			e.Vary[i].Values = d.strings()
		}
	}
	n := d.uvarint(maxFields)
	e.Header = make(http.Header, n)
	for range n {
		k := d.string()
		e.Header[k] = d.strings()
	}
	e.Body = d.bytes()
	if d.err != nil || len(d.b) != 0 || e.Status < 100 {
		return nil, errCorrupt
	}
	return e.Finish(), nil
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint(limit uint64) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 || v > limit {
		d.err = errCorrupt
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errCorrupt
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte() byte {
	if d.err != nil || len(d.b) == 0 {
		d.err = errCorrupt
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) bytes() []byte {
	n := d.uvarint(uint64(len(d.b)))
	if d.err != nil {
		return nil
	}
	out := d.b[:n:n]
	d.b = d.b[n:]
	return out
}

func (d *decoder) string() string { return string(d.bytes()) }

func (d *decoder) strings() []string {
	n := d.uvarint(maxValues)
	if d.err != nil || n == 0 {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.err = errCorrupt
		return nil
	}
	out := make([]string, n)
	for i := range out {
		out[i] = d.string()
	}
	return out
}
