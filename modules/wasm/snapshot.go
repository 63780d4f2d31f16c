package wasm

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/tetratelabs/wazero/api"
)

// This file lets `instances: reset` return a used instance to the state it had when it was
// instantiated: its linear memory and its mutable globals. wazero only reaches exported
// globals, so exportGlobals rewrites the module to export every mutable global it defines.

// globalExportPrefix names the exports exportGlobals adds ("conduit:global:<index>"); a
// colon cannot start a name any of the guest toolchains exports.
const globalExportPrefix = "conduit:global:"

var errMalformed = errors.New("malformed module")

// reader reads the WebAssembly binary format.
type reader struct {
	b []byte
	p int
}

func (r *reader) byte() (byte, error) {
	if r.p >= len(r.b) {
		return 0, errMalformed
	}
	c := r.b[r.p]
	r.p++
	return c, nil
}

// uleb reads an unsigned LEB128 of at most 64 bits.
func (r *reader) uleb() (uint64, error) {
	var v uint64
	for shift := 0; shift < 64; shift += 7 {
		c, err := r.byte()
		if err != nil {
			return 0, err
		}
		v |= uint64(c&0x7f) << shift
		if c&0x80 == 0 {
			return v, nil
		}
	}
	return 0, errMalformed
}

// skip advances n bytes.
func (r *reader) skip(n uint64) error {
	if n > uint64(len(r.b)-r.p) {
		return errMalformed
	}
	r.p += int(n)
	return nil
}

// name skips a length-prefixed name.
func (r *reader) name() error {
	n, err := r.uleb()
	if err != nil {
		return err
	}
	return r.skip(n)
}

// limits skips a table or memory's limits.
func (r *reader) limits() error {
	flags, err := r.byte()
	if err != nil {
		return err
	}
	if _, err := r.uleb(); err != nil {
		return err
	}
	if flags&1 != 0 {
		_, err = r.uleb()
	}
	return err
}

// constExpr skips a constant expression up to its `end`.
func (r *reader) constExpr() error {
	for {
		op, err := r.byte()
		if err != nil {
			return err
		}
		switch op {
		case 0x0b: // end
			return nil
		case 0x41, 0x42, 0x23, 0xd2: // i32.const, i64.const, global.get, ref.func
			_, err = r.uleb() // a signed LEB128 has the same length
		case 0x43: // f32.const
			err = r.skip(4)
		case 0x44: // f64.const
			err = r.skip(8)
		case 0xd0: // ref.null
			_, err = r.byte()
		case 0x6a, 0x6b, 0x6c, 0x7c, 0x7d, 0x7e: // extended-const arithmetic
		case 0xfd: // v128.const
			var sub uint64
			if sub, err = r.uleb(); err == nil {
				if sub != 12 {
					return fmt.Errorf("%w: unsupported constant instruction 0xfd %d", errMalformed, sub)
				}
				err = r.skip(16)
			}
		default:
			return fmt.Errorf("%w: unsupported constant instruction 0x%02x", errMalformed, op)
		}
		if err != nil {
			return err
		}
	}
}

// appendULEB appends v as an unsigned LEB128.
func appendULEB(b []byte, v uint64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			b = append(b, c|0x80)
			continue
		}
		return append(b, c)
	}
}

// exportGlobals returns code with an export for every mutable global the module defines,
// and the names of those exports. A module without mutable globals comes back unchanged.
func exportGlobals(code []byte) ([]byte, []string, error) {
	if len(code) < 8 || string(code[:4]) != "\x00asm" {
		return nil, nil, errMalformed
	}
	r := &reader{b: code, p: 8}
	var imported uint64
	var mutable []uint64
	headerStart, exportStart, exportEnd := -1, -1, -1
	for r.p < len(code) {
		secStart := r.p
		id, err := r.byte()
		if err != nil {
			return nil, nil, err
		}
		size, err := r.uleb()
		if err != nil {
			return nil, nil, err
		}
		start := r.p
		if size > uint64(len(code)-start) {
			return nil, nil, errMalformed
		}
		sec := &reader{b: code[:start+int(size)], p: start}
		switch id {
		case 2: // imports
			if imported, err = countImportedGlobals(sec); err != nil {
				return nil, nil, err
			}
		case 6: // globals
			if mutable, err = mutableGlobals(sec, imported); err != nil {
				return nil, nil, err
			}
		case 7: // exports
			headerStart, exportStart, exportEnd = secStart, start, start+int(size)
		}
		r.p = start + int(size)
	}
	if len(mutable) == 0 {
		return code, nil, nil
	}
	if exportStart < 0 {
		return nil, nil, fmt.Errorf("%w: no export section", errMalformed)
	}
	sec := &reader{b: code[:exportEnd], p: exportStart}
	count, err := sec.uleb()
	if err != nil {
		return nil, nil, err
	}
	body := appendULEB(nil, count+uint64(len(mutable)))
	body = append(body, code[sec.p:exportEnd]...)
	names := make([]string, len(mutable))
	for i, idx := range mutable {
		names[i] = globalExportPrefix + strconv.FormatUint(idx, 10)
		body = appendULEB(body, uint64(len(names[i])))
		body = append(body, names[i]...)
		body = append(body, 3) // global
		body = appendULEB(body, idx)
	}
	out := make([]byte, 0, len(code)+len(body))
	out = append(out, code[:headerStart]...)
	out = append(out, 7)
	out = appendULEB(out, uint64(len(body)))
	out = append(out, body...)
	out = append(out, code[exportEnd:]...)
	return out, names, nil
}

func countImportedGlobals(r *reader) (uint64, error) {
	globals, _, err := countImports(r)
	return globals, err
}

// countImports counts the globals and memories an import section imports.
func countImports(r *reader) (globals, memories uint64, err error) {
	n, err := r.uleb()
	if err != nil {
		return 0, 0, err
	}
	for range n {
		if err := r.name(); err != nil {
			return 0, 0, err
		}
		if err := r.name(); err != nil {
			return 0, 0, err
		}
		kind, err := r.byte()
		if err != nil {
			return 0, 0, err
		}
		switch kind {
		case 0: // function
			_, err = r.uleb()
		case 1: // table
			if _, err = r.byte(); err == nil {
				err = r.limits()
			}
		case 2: // memory
			err = r.limits()
			memories++
		case 3: // global
			if _, err = r.byte(); err == nil {
				_, err = r.byte()
			}
			globals++
		default:
			return 0, 0, fmt.Errorf("%w: unsupported import kind %d", errMalformed, kind)
		}
		if err != nil {
			return 0, 0, err
		}
	}
	return globals, memories, nil
}

func mutableGlobals(r *reader, imported uint64) ([]uint64, error) {
	n, err := r.uleb()
	if err != nil {
		return nil, err
	}
	var out []uint64
	for i := range n {
		if _, err := r.byte(); err != nil { // value type
			return nil, err
		}
		mut, err := r.byte()
		if err != nil {
			return nil, err
		}
		if err := r.constExpr(); err != nil {
			return nil, err
		}
		if mut == 1 {
			out = append(out, imported+i)
		}
	}
	return out, nil
}

// snapshot is an instance's state right after instantiation.
type snapshot struct {
	size   uint32 // of the memory, in bytes
	memory []byte // nil when the guest cannot write its memory (guestFacts.pureMemory)
	values []uint64
	names  []string
}

// takeSnapshot records m's memory (when withMemory) and the values of the globals
// exportGlobals exported. A guest that cannot write its memory (analysis.go) needs no
// copy of it: only its globals change.
func takeSnapshot(m api.Module, names []string, withMemory bool) (*snapshot, error) {
	mem := m.Memory()
	b, ok := mem.Read(0, mem.Size())
	if !ok {
		return nil, errors.New("cannot read the guest's memory")
	}
	s := &snapshot{size: mem.Size(), names: names}
	if withMemory {
		s.memory = append([]byte(nil), b...)
	}
	for _, n := range names {
		g, ok := m.ExportedGlobal(n).(api.MutableGlobal)
		if !ok {
			return nil, fmt.Errorf("global %s is not exported mutable", n)
		}
		s.values = append(s.values, g.Get())
	}
	return s, nil
}

// globals returns m's globals that the snapshot restores, in its order, or false when one
// is not exported mutable.
func (s *snapshot) globals(m api.Module) ([]api.MutableGlobal, bool) {
	out := make([]api.MutableGlobal, len(s.names))
	for i, n := range s.names {
		g, ok := m.ExportedGlobal(n).(api.MutableGlobal)
		if !ok {
			return nil, false
		}
		out[i] = g
	}
	return out, true
}

// restore puts m, whose globals are globals (from s.globals), back into the snapshot's
// state. It reports false when it cannot: the memory grew, so the instance must be dropped.
func (s *snapshot) restore(m api.Module, globals []api.MutableGlobal) bool {
	mem := m.Memory()
	if mem.Size() != s.size || len(globals) != len(s.values) {
		return false
	}
	if s.memory != nil {
		b, ok := mem.Read(0, mem.Size())
		if !ok {
			return false
		}
		copy(b, s.memory)
	}
	for i, g := range globals {
		g.Set(s.values[i])
	}
	return true
}
