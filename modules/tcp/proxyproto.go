package tcp

import (
	"encoding/binary"
	"net"
	"net/netip"
	"strconv"
)

// proxyV2Signature opens every PROXY protocol v2 header (haproxy's proxy-protocol.txt, 2.2).
var proxyV2Signature = []byte("\r\n\r\n\x00\r\nQUIT\n")

// proxyHeader returns the PROXY protocol header (version 1 or 2) that tells the upstream
// the connection came from client and was accepted on local. Addresses that are not TCP/IP,
// or whose families differ once IPv4-mapped IPv6 is unmapped, give "PROXY UNKNOWN" (v1) or a
// LOCAL header (v2), which the upstream reads as "use the connection's own addresses".
func proxyHeader(version int, client, local net.Addr) []byte {
	src, okSrc := addrPort(client)
	dst, okDst := addrPort(local)
	known := okSrc && okDst && src.Addr().Is4() == dst.Addr().Is4()
	if version == 1 {
		if !known {
			return []byte("PROXY UNKNOWN\r\n")
		}
		fam := "TCP6"
		if src.Addr().Is4() {
			fam = "TCP4"
		}
		b := make([]byte, 0, 108)
		b = append(b, "PROXY "...)
		b = append(b, fam...)
		b = append(b, ' ')
		b = src.Addr().AppendTo(b)
		b = append(b, ' ')
		b = dst.Addr().AppendTo(b)
		b = append(b, ' ')
		b = strconv.AppendUint(b, uint64(src.Port()), 10)
		b = append(b, ' ')
		b = strconv.AppendUint(b, uint64(dst.Port()), 10)
		return append(b, "\r\n"...)
	}
	b := make([]byte, 0, 16+36)
	b = append(b, proxyV2Signature...)
	if !known {
		// Version 2, command LOCAL; family UNSPEC; no address block.
		return append(b, 0x20, 0x00, 0x00, 0x00)
	}
	b = append(b, 0x21) // version 2, command PROXY
	if src.Addr().Is4() {
		b = append(b, 0x11, 0x00, 12) // TCP over IPv4, 12 address bytes
		s4, d4 := src.Addr().As4(), dst.Addr().As4()
		b = append(b, s4[:]...)
		b = append(b, d4[:]...)
	} else {
		b = append(b, 0x21, 0x00, 36) // TCP over IPv6, 36 address bytes
		s16, d16 := src.Addr().As16(), dst.Addr().As16()
		b = append(b, s16[:]...)
		b = append(b, d16[:]...)
	}
	b = binary.BigEndian.AppendUint16(b, src.Port())
	return binary.BigEndian.AppendUint16(b, dst.Port())
}

// addrPort returns a TCP address with IPv4-mapped IPv6 unmapped and no zone.
func addrPort(a net.Addr) (netip.AddrPort, bool) {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return netip.AddrPort{}, false
	}
	ap := ta.AddrPort()
	if !ap.Addr().IsValid() {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(ap.Addr().Unmap().WithZone(""), ap.Port()), true
}
