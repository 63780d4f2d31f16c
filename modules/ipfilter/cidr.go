package ipfilter

import (
	"fmt"
	"net/netip"
	"strings"
)

// ParseCIDR parses an allow/deny entry: an IP address ("192.168.1.1", "::1") or a CIDR
// ("10.0.0.0/8", "2001:db8::/32"). IPv4-mapped IPv6 forms ("::ffff:10.0.0.1",
// "::ffff:10.0.0.0/104") are normalised to IPv4, so one entry matches a client however its
// address arrives. hostBits reports a CIDR with bits set below the mask ("10.0.0.1/8"),
// which is accepted as its network ("10.0.0.0/8"), as nginx does with a warning.
func ParseCIDR(s string) (p netip.Prefix, hostBits bool, err error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return netip.Prefix{}, false, fmt.Errorf("empty address")
	}
	if strings.IndexByte(s, '/') < 0 {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, false, fmt.Errorf("%q is not an IP address or CIDR", s)
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), false, nil
	}
	p, err = netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, false, fmt.Errorf("%q is not a valid CIDR (address/prefix-length, e.g. 10.0.0.0/8 or 2001:db8::/32)", s)
	}
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	m := p.Masked()
	return m, m != p, nil
}

// prefixList matches addresses against a list of prefixes, IPv4 and IPv6 kept apart.
type prefixList struct {
	v4, v6 []netip.Prefix
}

func (l *prefixList) add(p netip.Prefix) {
	if p.Addr().Is4() {
		l.v4 = append(l.v4, p)
	} else {
		l.v6 = append(l.v6, p)
	}
}

func (l *prefixList) empty() bool { return len(l.v4) == 0 && len(l.v6) == 0 }

// contains reports whether a (already unmapped) is in the list.
func (l *prefixList) contains(a netip.Addr) bool {
	list := l.v6
	if a.Is4() {
		list = l.v4
	}
	for _, p := range list {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
