package wasm

import (
	"fmt"
	"slices"
)

// This file bounds a guest call by time without wazero's WithCloseOnContextDone, which
// starts a goroutine for every call (wazero v1.12.0, internal/engine/wazevo/call_engine.go).
// instrument adds a mutable i32 global to the guest, exported as interruptExport, and makes
// every loop test it at the start of each iteration: when it is not zero the guest runs
// `unreachable`, which traps the call. The runtime's watchdog (watchdog.go) sets the global
// of a call that ran past its deadline. Only loops are checked, as wazero's own
// WithCloseOnContextDone does.
//
// The watchdog is a goroutine: it needs one of the Go scheduler's Ps, and Go cannot preempt
// a goroutine running guest code. So that guests spinning on every P cannot starve it,
// every loop also counts down a second global from yieldEvery, and when it reaches zero
// runs `memory.grow 0`, a no-op that wazero carries out in Go (a point where the scheduler
// preempts a goroutine that ran too long).

// interruptExport names the global instrument adds.
const interruptExport = "conduit:interrupt"

// yieldEvery is how many loop iterations run between two `memory.grow 0`.
const yieldEvery = 1 << 14

// Section ids of the WebAssembly binary format.
const (
	secCustom = 0
	secImport = 2
	secMemory = 5
	secGlobal = 6
	secExport = 7
	secStart  = 8
	secCode   = 10
)

// sectionRank orders the known sections as the binary format requires (the tag section,
// 13, sits between memory and global; data count, 12, between element and code).
var sectionRank = map[byte]int{1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 13: 6, 6: 7, 7: 8, 8: 9, 9: 10, 12: 11, 10: 12, 11: 13}

// instrument returns code with the interrupt global and a test of it at the start of every
// loop, and with its start function (the start section, which wazero would run inside
// InstantiateModule, out of the watchdog's reach) exported as startExport instead, for
// guestRuntime to call. It fails on a malformed module, an instruction it does not know (a
// module that wazero accepts has none of those: FuzzInstrument checks it) and on code that
// sets a global the module does not have (it would be the interrupt global).
func instrument(code []byte) ([]byte, error) {
	if len(code) < 8 || string(code[:4]) != "\x00asm" {
		return nil, errMalformed
	}
	type section struct {
		id         byte
		start, end int // the whole section, its header included
		body       int // where its content starts
	}
	var secs []section
	var imported, defined, memories uint64
	start := -1 // the start function
	r := &reader{b: code, p: 8}
	for r.p < len(code) {
		at := r.p
		id, err := r.byte()
		if err != nil {
			return nil, err
		}
		size, err := r.uleb()
		if err != nil {
			return nil, err
		}
		if size > uint64(len(code)-r.p) {
			return nil, errMalformed
		}
		body := r.p
		r.p += int(size)
		if id != secCustom {
			if _, ok := sectionRank[id]; !ok {
				return nil, fmt.Errorf("%w: unknown section %d", errMalformed, id)
			}
		}
		secs = append(secs, section{id: id, start: at, end: r.p, body: body})
		sec := &reader{b: code[:r.p], p: body}
		switch id {
		case secImport:
			if imported, memories, err = countImports(sec); err != nil {
				return nil, err
			}
		case secMemory:
			n, err := sec.uleb()
			if err != nil {
				return nil, err
			}
			memories += n
		case secGlobal:
			if defined, err = sec.uleb(); err != nil {
				return nil, err
			}
		case secStart:
			fn, err := sec.uleb()
			if err != nil {
				return nil, err
			}
			start = int(min(fn, 1<<32))
		}
	}
	index := imported + defined
	// The globals: the interrupt (i32, mutable, `i32.const 0`) and, in a module with a
	// memory to grow, the countdown (i32, mutable, `i32.const yieldEvery`).
	globals := 1
	global := []byte{0x7f, 1, 0x41, 0, 0x0b}
	if memories > 0 {
		global = append(append(global, 0x7f, 1, 0x41), appendSLEB32(nil, yieldEvery)...)
		global = append(global, 0x0b)
		globals++
	}
	export := appendULEB(nil, uint64(len(interruptExport)))
	export = append(export, interruptExport...)
	export = append(append(export, 3), appendULEB(nil, index)...)
	exports := 1
	if start >= 0 {
		export = appendULEB(export, uint64(len(startExport)))
		export = append(export, startExport...)
		export = append(append(export, 0), appendULEB(nil, uint64(start))...)
		exports++
	}
	check := append([]byte{0x23}, appendULEB(nil, index)...) // global.get interrupt
	check = append(check, 0x04, 0x40, 0x00, 0x0b)            // if, unreachable, end
	if memories > 0 {
		fuel := appendULEB(nil, index+1)
		check = append(append(check, 0x23), fuel...)              // global.get countdown
		check = append(check, 0x41, 0x01, 0x6b)                   // i32.const 1, i32.sub
		check = append(append(check, 0x24), fuel...)              // global.set countdown
		check = append(append(check, 0x23), fuel...)              // global.get countdown
		check = append(check, 0x45, 0x04, 0x40, 0x41)             // i32.eqz, if, i32.const
		check = append(appendSLEB32(check, yieldEvery), 0x24)     // yieldEvery, global.set
		check = append(check, fuel...)                            // countdown
		check = append(check, 0x41, 0x00, 0x40, 0x00, 0x1a, 0x0b) // memory.grow 0, drop, end
	}

	out := make([]byte, 0, len(code)+64)
	out = append(out, code[:8]...)
	hasGlobal := slices.ContainsFunc(secs, func(s section) bool { return s.id == secGlobal })
	hasExport := slices.ContainsFunc(secs, func(s section) bool { return s.id == secExport })
	// add appends a section holding one entry, for a module that has none of that kind.
	add := func(id byte, entries int, entry []byte) {
		out = append(out, id)
		out = appendULEB(out, uint64(len(entry)+1))
		out = append(out, byte(entries))
		out = append(out, entry...)
	}
	for _, s := range secs {
		if s.id != secCustom {
			if !hasGlobal && sectionRank[s.id] > sectionRank[secGlobal] {
				add(secGlobal, globals, global)
				hasGlobal = true
			}
			if !hasExport && sectionRank[s.id] > sectionRank[secExport] {
				add(secExport, exports, export)
				hasExport = true
			}
		}
		var body []byte
		var err error
		switch s.id {
		case secGlobal:
			body, err = appendEntries(code[:s.end], s.body, globals, global)
		case secExport:
			body, err = appendEntries(code[:s.end], s.body, exports, export)
		case secStart:
			continue // exported instead
		case secCode:
			body, err = instrumentCode(code[:s.end], s.body, check, index)
		default:
			out = append(out, code[s.start:s.end]...)
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, s.id)
		out = appendULEB(out, uint64(len(body)))
		out = append(out, body...)
	}
	if !hasGlobal {
		add(secGlobal, globals, global)
	}
	if !hasExport {
		add(secExport, exports, export)
	}
	return out, nil
}

// appendEntries returns the vector that starts at b[p:] with n entries (encoded in
// entries) added at its end.
func appendEntries(b []byte, p int, n int, entries []byte) ([]byte, error) {
	r := &reader{b: b, p: p}
	count, err := r.uleb()
	if err != nil {
		return nil, err
	}
	out := appendULEB(nil, count+uint64(n))
	out = append(out, b[r.p:]...)
	return append(out, entries...), nil
}

// instrumentCode returns the code section at b[p:] with check inserted at the start of
// every loop's body; code that sets global interrupt (or a later one) is refused.
func instrumentCode(b []byte, p int, check []byte, interrupt uint64) ([]byte, error) {
	r := &reader{b: b, p: p}
	n, err := r.uleb()
	if err != nil {
		return nil, err
	}
	out := appendULEB(nil, n)
	var fn []byte
	for range n {
		size, err := r.uleb()
		if err != nil {
			return nil, err
		}
		if size > uint64(len(b)-r.p) {
			return nil, errMalformed
		}
		end := r.p + int(size)
		body := &reader{b: b[:end], p: r.p}
		loops, err := loopStarts(body, interrupt)
		if err != nil {
			return nil, err
		}
		fn = fn[:0]
		last := r.p
		for _, at := range loops {
			fn = append(fn, b[last:at]...)
			fn = append(fn, check...)
			last = at
		}
		fn = append(fn, b[last:end]...)
		out = appendULEB(out, uint64(len(fn)))
		out = append(out, fn...)
		r.p = end
	}
	if r.p != len(b) {
		return nil, fmt.Errorf("%w: bytes after the last function body", errMalformed)
	}
	return out, nil
}

// loopStarts walks a function body (its locals, then its instructions) and returns the
// offsets right after each `loop` instruction and its block type. It refuses a global.set
// of global interrupt or a later one.
func loopStarts(r *reader, interrupt uint64) ([]int, error) {
	groups, err := r.uleb()
	if err != nil {
		return nil, err
	}
	for range groups {
		if _, err := r.uleb(); err != nil {
			return nil, err
		}
		if err := r.valType(); err != nil {
			return nil, err
		}
	}
	var loops []int
	for r.p < len(r.b) {
		op, err := r.byte()
		if err != nil {
			return nil, err
		}
		if op == 0x24 { // global.set
			at := r.p
			if idx, err := r.uleb(); err != nil || idx >= interrupt {
				return nil, fmt.Errorf("%w: global.set of a global the module does not define", errMalformed)
			}
			r.p = at
		}
		if err := r.immediates(op); err != nil {
			return nil, fmt.Errorf("instruction 0x%02x at byte %d: %w", op, r.p, err)
		}
		if op == 0x03 { // loop
			loops = append(loops, r.p)
		}
	}
	return loops, nil
}

// valType skips a value type (a number, vector or reference type: one byte).
func (r *reader) valType() error {
	t, err := r.byte()
	if err != nil {
		return err
	}
	switch t {
	case 0x7f, 0x7e, 0x7d, 0x7c, 0x7b, 0x70, 0x6f, 0x69: // i32 i64 f32 f64 v128 funcref externref exnref
		return nil
	}
	return fmt.Errorf("%w: unsupported value type 0x%02x", errMalformed, t)
}

// leb skips n LEB128 numbers (signed ones have the same length rules).
func (r *reader) leb(n int) error {
	for range n {
		if _, err := r.uleb(); err != nil {
			return err
		}
	}
	return nil
}

// memarg skips a memory argument: its alignment (with bit 6, a memory index follows)
// and offset.
func (r *reader) memarg() error {
	align, err := r.uleb()
	if err != nil {
		return err
	}
	if align&0x40 != 0 {
		if _, err := r.uleb(); err != nil {
			return err
		}
	}
	_, err = r.uleb()
	return err
}

// immediates skips the immediate arguments of instruction op.
func (r *reader) immediates(op byte) error {
	switch {
	case op <= 0x01, op == 0x05, op == 0x0a, op == 0x0b, op == 0x0f, op == 0x19, op == 0x1a, op == 0x1b,
		op >= 0x45 && op <= 0xc4, op == 0xd1, op == 0xd3, op == 0xd5:
		return nil // no immediates
	case op >= 0x02 && op <= 0x04, op == 0x06: // block, loop, if, try: a block type
		return r.leb(1)
	case op >= 0x07 && op <= 0x09, op == 0x0c, op == 0x0d, op == 0x10, op == 0x12, op == 0x14, op == 0x15,
		op == 0x18, op >= 0x20 && op <= 0x26, op == 0x3f, op == 0x40, op == 0x41, op == 0x42,
		op == 0xd0, op == 0xd2, op == 0xd4, op == 0xd6:
		return r.leb(1) // an index, a label, a constant or a heap type
	case op == 0x11, op == 0x13: // call_indirect, return_call_indirect
		return r.leb(2)
	case op == 0x0e: // br_table
		n, err := r.uleb()
		if err != nil {
			return err
		}
		if n > uint64(len(r.b)-r.p) {
			return errMalformed
		}
		return r.leb(int(n) + 1)
	case op == 0x1c: // select with types
		n, err := r.uleb()
		if err != nil {
			return err
		}
		for range n {
			if err := r.valType(); err != nil {
				return err
			}
		}
		return nil
	case op == 0x1f: // try_table: a block type, then its catch clauses
		if err := r.leb(1); err != nil {
			return err
		}
		n, err := r.uleb()
		if err != nil {
			return err
		}
		for range n {
			kind, err := r.byte()
			if err != nil {
				return err
			}
			switch kind {
			case 0, 1: // catch, catch_ref: a tag and a label
				err = r.leb(2)
			case 2, 3: // catch_all, catch_all_ref: a label
				err = r.leb(1)
			default:
				err = fmt.Errorf("%w: unknown catch kind %d", errMalformed, kind)
			}
			if err != nil {
				return err
			}
		}
		return nil
	case op >= 0x28 && op <= 0x3e: // loads and stores
		return r.memarg()
	case op == 0x43: // f32.const
		return r.skip(4)
	case op == 0x44: // f64.const
		return r.skip(8)
	case op == 0xfc:
		return r.prefixFC()
	case op == 0xfd:
		return r.prefixFD()
	case op == 0xfe:
		return r.prefixFE()
	}
	return fmt.Errorf("%w: unknown instruction", errMalformed)
}

// prefixFC skips the saturating truncations and the bulk memory and table instructions.
func (r *reader) prefixFC() error {
	sub, err := r.uleb()
	if err != nil {
		return err
	}
	switch {
	case sub <= 7: // trunc_sat
		return nil
	case sub == 8, sub == 10, sub == 12, sub == 14: // memory.init, memory.copy, table.init, table.copy
		return r.leb(2)
	case sub <= 17: // data.drop, memory.fill, elem.drop, table.grow, table.size, table.fill
		return r.leb(1)
	}
	return fmt.Errorf("%w: unknown instruction 0xfc %d", errMalformed, sub)
}

// prefixFD skips the vector instructions (relaxed SIMD included).
func (r *reader) prefixFD() error {
	sub, err := r.uleb()
	if err != nil {
		return err
	}
	switch {
	case sub <= 11, sub == 92, sub == 93: // loads and stores
		return r.memarg()
	case sub == 12, sub == 13: // v128.const, i8x16.shuffle
		return r.skip(16)
	case sub >= 21 && sub <= 34: // extract_lane, replace_lane
		return r.skip(1)
	case sub >= 84 && sub <= 91: // load_lane, store_lane
		if err := r.memarg(); err != nil {
			return err
		}
		return r.skip(1)
	case sub <= 0x113:
		return nil
	}
	return fmt.Errorf("%w: unknown instruction 0xfd %d", errMalformed, sub)
}

// prefixFE skips the atomic instructions.
func (r *reader) prefixFE() error {
	sub, err := r.uleb()
	if err != nil {
		return err
	}
	switch {
	case sub == 3: // atomic.fence
		return r.skip(1)
	case sub <= 2, sub >= 0x10 && sub <= 0x4e:
		return r.memarg()
	}
	return fmt.Errorf("%w: unknown instruction 0xfe %d", errMalformed, sub)
}

// appendSLEB32 appends v as a signed LEB128.
func appendSLEB32(b []byte, v int32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}
