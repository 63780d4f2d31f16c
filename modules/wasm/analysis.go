package wasm

import "fmt"

// This file reads a guest's code once, when it loads, for two facts that save work per
// request:
//   - an exported function whose body has no instructions (for one with a result: only a
//     constant) does nothing a caller could notice, so it is not called at all;
//   - a guest that cannot write its linear memory (no store, memory.grow, bulk memory or
//     atomic write instruction, no data.drop, and no import that writes into its memory)
//     leaves the memory as instantiation left it, so `instances: reset` only has to restore
//     its mutable globals, not copy the memory snapshot back.
//
// Both are decided on the code as written, whatever runs when; anything the reader does not
// understand makes it answer "may write memory" and "not inert".

// guestFacts is what analyse found in a guest's code.
type guestFacts struct {
	// consts maps the exported functions whose body is at most one constant instruction
	// to that constant (0 for an empty body): calling them has no effect and returns it.
	consts map[string]uint64
	// pureMemory: no instruction or import of the guest writes its linear memory.
	pureMemory bool
}

// memoryWritingImport reports whether the import mod.name may write into the guest's
// memory. Only the conduit host module's functions that fill no buffer are known not to.
func memoryWritingImport(mod, name string) bool {
	if mod != conduitModule {
		return true
	}
	_, ok := conduitBufferFree[name]
	return !ok
}

// conduitBufferFree are the conduit host functions that never write into the guest's
// memory (conduitabi.go: none of them calls call.put or putAt).
var conduitBufferFree = map[string]struct{}{
	"conduit_get_header_count": {}, "conduit_set_request_header": {}, "conduit_remove_request_header": {},
	"conduit_set_response_status": {}, "conduit_set_response_header": {}, "conduit_set_response_body": {},
	"conduit_abort_with_redirect": {}, "conduit_log": {}, "conduit_get_response_status": {},
	"conduit_remove_response_header": {},
}

// analyse reads code (the guest as written, before instrument) and returns its facts; a
// module it cannot read gets the facts that assume nothing.
func analyse(code []byte) guestFacts {
	f, err := analyseModule(code)
	if err != nil {
		return guestFacts{}
	}
	return f
}

// analyseModule is analyse with the reason a module could not be read.
func analyseModule(code []byte) (guestFacts, error) {
	if len(code) < 8 || string(code[:4]) != "\x00asm" {
		return guestFacts{}, errMalformed
	}
	pure := true
	var importedFuncs uint64
	exports := map[string]uint64{} // function exports: name → function index
	var bodies [][2]int            // code section: each body's start and end
	r := &reader{b: code, p: 8}
	for r.p < len(code) {
		id, err := r.byte()
		if err != nil {
			return guestFacts{}, err
		}
		size, err := r.uleb()
		if err != nil {
			return guestFacts{}, err
		}
		if size > uint64(len(code)-r.p) {
			return guestFacts{}, errMalformed
		}
		end := r.p + int(size)
		sec := &reader{b: code[:end], p: r.p}
		r.p = end
		switch id {
		case secImport:
			n, wrote, err := readImports(sec)
			if err != nil {
				return guestFacts{}, err
			}
			importedFuncs = n
			pure = pure && !wrote
		case secExport:
			if err := readFuncExports(sec, exports); err != nil {
				return guestFacts{}, err
			}
		case secCode:
			n, err := sec.uleb()
			if err != nil {
				return guestFacts{}, err
			}
			for range n {
				size, err := sec.uleb()
				if err != nil {
					return guestFacts{}, err
				}
				if size > uint64(end-sec.p) {
					return guestFacts{}, errMalformed
				}
				bodies = append(bodies, [2]int{sec.p, sec.p + int(size)})
				sec.p += int(size)
			}
		}
	}
	f := guestFacts{consts: map[string]uint64{}}
	for _, b := range bodies {
		wrote, err := writesMemory(&reader{b: code[:b[1]], p: b[0]})
		if err != nil {
			return guestFacts{}, err
		}
		pure = pure && !wrote
	}
	f.pureMemory = pure
	for name, idx := range exports {
		if idx < importedFuncs || idx-importedFuncs >= uint64(len(bodies)) {
			continue
		}
		b := bodies[idx-importedFuncs]
		if v, ok := constantBody(&reader{b: code[:b[1]], p: b[0]}); ok {
			f.consts[name] = v
		}
	}
	return f, nil
}

// readImports counts the imported functions and reports whether an import may write the
// guest's memory (an imported memory counts: something else may hold it).
func readImports(r *reader) (funcs uint64, writes bool, err error) {
	n, err := r.uleb()
	if err != nil {
		return 0, false, err
	}
	for range n {
		mod, err := r.str()
		if err != nil {
			return 0, false, err
		}
		name, err := r.str()
		if err != nil {
			return 0, false, err
		}
		kind, err := r.byte()
		if err != nil {
			return 0, false, err
		}
		switch kind {
		case 0: // function
			_, err = r.uleb()
			funcs++
			writes = writes || memoryWritingImport(mod, name)
		case 1: // table
			if _, err = r.byte(); err == nil {
				err = r.limits()
			}
		case 2: // memory
			err = r.limits()
			writes = true
		case 3: // global
			if _, err = r.byte(); err == nil {
				_, err = r.byte()
			}
		default:
			return 0, false, fmt.Errorf("%w: unsupported import kind %d", errMalformed, kind)
		}
		if err != nil {
			return 0, false, err
		}
	}
	return funcs, writes, nil
}

// readFuncExports adds the function exports of an export section to exports.
func readFuncExports(r *reader, exports map[string]uint64) error {
	n, err := r.uleb()
	if err != nil {
		return err
	}
	for range n {
		name, err := r.str()
		if err != nil {
			return err
		}
		kind, err := r.byte()
		if err != nil {
			return err
		}
		idx, err := r.uleb()
		if err != nil {
			return err
		}
		if kind == 0 {
			exports[name] = idx
		}
	}
	return nil
}

// str reads a length-prefixed name.
func (r *reader) str() (string, error) {
	n, err := r.uleb()
	if err != nil {
		return "", err
	}
	if n > uint64(len(r.b)-r.p) {
		return "", errMalformed
	}
	s := string(r.b[r.p : r.p+int(n)])
	r.p += int(n)
	return s, nil
}

// skipLocals skips a function body's local declarations.
func (r *reader) skipLocals() error {
	groups, err := r.uleb()
	if err != nil {
		return err
	}
	for range groups {
		if _, err := r.uleb(); err != nil {
			return err
		}
		if err := r.valType(); err != nil {
			return err
		}
	}
	return nil
}

// writesMemory reports whether a function body has an instruction that writes linear
// memory or changes it otherwise: a store (plain, vector or atomic; any atomic
// read-modify-write), memory.grow, memory.init, memory.copy, memory.fill or data.drop.
func writesMemory(r *reader) (bool, error) {
	if err := r.skipLocals(); err != nil {
		return true, err
	}
	for r.p < len(r.b) {
		op, err := r.byte()
		if err != nil {
			return true, err
		}
		switch {
		case op >= 0x36 && op <= 0x3e, op == 0x40: // stores, memory.grow
			return true, nil
		case op == 0xfc, op == 0xfd, op == 0xfe:
			at := r.p
			sub, err := r.uleb()
			if err != nil {
				return true, err
			}
			r.p = at
			switch {
			case op == 0xfc && sub >= 8 && sub <= 11: // memory.init, data.drop, memory.copy, memory.fill
				return true, nil
			case op == 0xfd && (sub == 11 || (sub >= 88 && sub <= 91)): // v128.store, store_lane
				return true, nil
			case op == 0xfe && sub != 3: // every atomic but fence (loads included: be safe)
				return true, nil
			}
		}
		if err := r.immediates(op); err != nil {
			return true, err
		}
	}
	return false, nil
}

// constantBody reports whether a function body is empty or one i32.const or i64.const
// (after its local declarations), and the constant's value (0 for an empty body), as
// the bits of the i32 or i64 result.
func constantBody(r *reader) (uint64, bool) {
	if r.skipLocals() != nil {
		return 0, false
	}
	op, err := r.byte()
	if err != nil {
		return 0, false
	}
	if op == 0x0b { // end
		return 0, r.p == len(r.b)
	}
	var v uint64
	switch op {
	case 0x41: // i32.const
		x, err := r.sleb()
		if err != nil || x < -1<<31 || x >= 1<<31 {
			return 0, false
		}
		v = uint64(uint32(int32(x)))
	case 0x42: // i64.const
		x, err := r.sleb()
		if err != nil {
			return 0, false
		}
		v = uint64(x)
	default:
		return 0, false
	}
	if end, err := r.byte(); err != nil || end != 0x0b || r.p != len(r.b) {
		return 0, false
	}
	return v, true
}

// sleb reads a signed LEB128 of at most 64 bits.
func (r *reader) sleb() (int64, error) {
	var v int64
	for shift := 0; shift < 64; shift += 7 {
		c, err := r.byte()
		if err != nil {
			return 0, err
		}
		v |= int64(c&0x7f) << shift
		if c&0x80 == 0 {
			if shift+7 < 64 && c&0x40 != 0 {
				v |= -1 << (shift + 7)
			}
			return v, nil
		}
	}
	return 0, errMalformed
}
