package ipfilter

import (
	"net/netip"
	"strings"
	"testing"
)

func TestParseCIDR(t *testing.T) {
	tests := []struct {
		in, want string
		hostBits bool
		err      string
	}{
		{"10.0.0.0/8", "10.0.0.0/8", false, ""},
		{"192.168.1.1", "192.168.1.1/32", false, ""},
		{"::1", "::1/128", false, ""},
		{"::1/128", "::1/128", false, ""},
		{"2001:db8::/32", "2001:db8::/32", false, ""},
		{"2001:db8::1", "2001:db8::1/128", false, ""},
		{"::ffff:10.0.0.1", "10.0.0.1/32", false, ""},
		{"::ffff:10.0.0.0/104", "10.0.0.0/8", false, ""},
		{"10.0.0.1/8", "10.0.0.0/8", true, ""},
		{" 10.1.2.3 ", "10.1.2.3/32", false, ""},
		{"999.999.0.0/8", "", false, "not a valid CIDR"},
		{"not-an-ip", "", false, "not an IP address or CIDR"},
		{"10.0.0.0/33", "", false, "not a valid CIDR"},
		{"10.0.0.0/abc", "", false, "not a valid CIDR"},
		{"::1/129", "", false, "not a valid CIDR"},
		{"fe80::1%eth0", "", false, "not an IP address"},
		{"", "", false, "empty"},
		{"010.0.0.1", "", false, "not an IP address"},
	}
	for _, tt := range tests {
		p, hb, err := ParseCIDR(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseCIDR(%q) error %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || p.String() != tt.want || hb != tt.hostBits {
			t.Errorf("ParseCIDR(%q) = %v %v %v, want %s %v", tt.in, p, hb, err, tt.want, tt.hostBits)
		}
	}
}

func mustList(t *testing.T, entries ...string) prefixList {
	t.Helper()
	var l prefixList
	for _, e := range entries {
		p, _, err := ParseCIDR(e)
		if err != nil {
			t.Fatal(err)
		}
		l.add(p)
	}
	return l
}

func TestAllowedRules(t *testing.T) {
	rt := &runtimeDeny{set: map[netip.Prefix]struct{}{}}
	tests := []struct {
		name        string
		allow, deny []string
		runtime     []string
		ip          string
		want        bool
	}{
		{"no lists", nil, nil, nil, "203.0.113.1", true},
		{"deny hit", nil, []string{"203.0.113.0/24"}, nil, "203.0.113.1", false},
		{"deny miss", nil, []string{"203.0.113.0/24"}, nil, "198.51.100.1", true},
		{"allow hit", []string{"10.0.0.0/8"}, nil, nil, "10.1.2.3", true},
		{"allow miss denies", []string{"10.0.0.0/8"}, nil, nil, "11.0.0.1", false},
		{"allow wins over deny", []string{"10.0.0.0/8"}, []string{"10.1.0.0/16"}, nil, "10.1.2.3", true},
		{"allow wins over runtime deny", []string{"10.0.0.0/8"}, nil, []string{"10.1.2.3"}, "10.1.2.3", true},
		{"runtime deny", nil, nil, []string{"198.51.100.0/24"}, "198.51.100.7", false},
		{"v6 deny", nil, []string{"2001:db8::/32"}, nil, "2001:db8::5", false},
		{"v4 entry does not match v6", nil, []string{"10.0.0.0/8"}, nil, "2001:db8::5", true},
		{"mapped entry matches v4 client", nil, []string{"::ffff:192.0.2.0/120"}, nil, "192.0.2.9", false},
		{"invalid client with allow list", []string{"10.0.0.0/8"}, nil, nil, "", false},
		{"invalid client without lists", nil, []string{"10.0.0.0/8"}, nil, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rt.set = map[netip.Prefix]struct{}{}
			for _, e := range tt.runtime {
				p, _, _ := ParseCIDR(e)
				rt.set[p] = struct{}{}
			}
			rt.publish()
			f := &filter{allow: mustList(t, tt.allow...), deny: mustList(t, tt.deny...), rt: rt}
			var ip netip.Addr
			if tt.ip != "" {
				ip = netip.MustParseAddr(tt.ip)
			}
			if got := f.allowed(ip); got != tt.want {
				t.Errorf("allowed(%s) = %v, want %v", tt.ip, got, tt.want)
			}
		})
	}
}

func TestRealIP(t *testing.T) {
	def := mustList(t, DefaultTrustedProxies...)
	lb := mustList(t, "192.0.2.10", "192.0.2.11")
	tests := []struct {
		name    string
		peer    string
		xff     []string
		trusted *prefixList
		want    string
	}{
		{"untrusted peer ignores header", "203.0.113.5", []string{"1.2.3.4"}, &def, "203.0.113.5"},
		{"trusted peer, one hop", "127.0.0.1", []string{"203.0.113.7"}, &def, "203.0.113.7"},
		{"spoofed leftmost is skipped", "127.0.0.1", []string{"6.6.6.6, 203.0.113.7"}, &def, "203.0.113.7"},
		{"internal hops skipped", "10.0.0.2", []string{"203.0.113.7, 10.0.0.9, 172.16.0.1"}, &def, "203.0.113.7"},
		{"several header lines in order", "127.0.0.1", []string{"6.6.6.6", "203.0.113.7, 10.0.0.1"}, &def, "203.0.113.7"},
		{"all trusted: leftmost", "127.0.0.1", []string{"10.0.0.1, 192.168.0.1"}, &def, "10.0.0.1"},
		{"malformed hop stops at last good", "127.0.0.1", []string{"203.0.113.7, garbage, 10.0.0.1"}, &def, "10.0.0.1"},
		{"unknown token", "127.0.0.1", []string{"unknown"}, &def, "127.0.0.1"},
		{"mapped v6 hop unmapped", "127.0.0.1", []string{"::ffff:203.0.113.7"}, &def, "203.0.113.7"},
		{"hop with port", "127.0.0.1", []string{"203.0.113.7:5555"}, &def, "203.0.113.7"},
		{"bracketed v6 with port", "::1", []string{"[2001:db8::7]:443"}, &def, "2001:db8::7"},
		{"bracketed v6", "::1", []string{"[2001:db8::7]"}, &def, "2001:db8::7"},
		{"empty entries skipped", "127.0.0.1", []string{" , 203.0.113.7 ,"}, &def, "203.0.113.7"},
		{"explicit list: LB peer", "192.0.2.10", []string{"10.0.0.5"}, &lb, "10.0.0.5"},
		{"explicit list: other peer", "10.0.0.1", []string{"203.0.113.7"}, &lb, "10.0.0.1"},
		{"no header", "127.0.0.1", nil, &def, "127.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := RealIP(netip.MustParseAddr(tt.peer), tt.xff, tt.trusted.contains)
			if got.String() != tt.want {
				t.Errorf("RealIP(%s, %q) = %s, want %s", tt.peer, tt.xff, got, tt.want)
			}
		})
	}
}

func FuzzParseCIDR(f *testing.F) {
	for _, s := range []string{"10.0.0.0/8", "::1", "::ffff:1.2.3.4/120", "999.999.0.0/8", "10.0.0.0/33", "fe80::1%eth0/64", "", "/", "1.2.3.4/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, _, err := ParseCIDR(s)
		if err != nil {
			return
		}
		if !p.IsValid() || p.Addr().Is4In6() || p != p.Masked() {
			t.Fatalf("ParseCIDR(%q) = %v: not a valid, unmapped, masked prefix", s, p)
		}
		// The canonical form parses back to itself.
		q, hb, err := ParseCIDR(p.String())
		if err != nil || q != p || hb {
			t.Fatalf("round trip of %q: %v %v %v", p, q, hb, err)
		}
	})
}

func FuzzRealIP(f *testing.F) {
	f.Add("127.0.0.1", "203.0.113.7, 10.0.0.1")
	f.Add("10.0.0.1", "[::1]:80,::ffff:1.2.3.4, ,x")
	def := mustList(&testing.T{}, DefaultTrustedProxies...)
	f.Fuzz(func(t *testing.T, peer, xff string) {
		pa, err := netip.ParseAddr(peer)
		if err != nil {
			return
		}
		pa = pa.Unmap()
		got := RealIP(pa, []string{xff}, def.contains)
		if got != pa {
			found := false
			for _, part := range strings.Split(xff, ",") {
				if a, ok := parseHop(strings.TrimSpace(part)); ok && a == got {
					found = true
				}
			}
			if !found {
				t.Fatalf("RealIP returned %s, which is neither the peer nor a hop of %q", got, xff)
			}
		}
		if !def.contains(pa) && got != pa {
			t.Fatalf("untrusted peer %s: header believed (%s)", pa, got)
		}
	})
}
