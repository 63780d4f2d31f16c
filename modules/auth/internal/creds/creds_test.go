package creds

import (
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// The hashes below were made with `openssl passwd` (OpenSSL 3, an independent
// implementation) for the password "hunter2"; {SSHA} with Python's hashlib.
const pw = "hunter2"

func TestPasswordFormats(t *testing.T) {
	bc, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	b := string(bc)
	for _, tc := range []struct {
		stored, kind string
	}{
		{pw, KindPlain},
		{"{PLAIN}" + pw, KindPlain},
		{b, KindBcrypt},
		{"$2y$" + b[4:], KindBcrypt},
		{"$2a$" + b[4:], KindBcrypt},
		{"{SHA}87u9ZqY9S/F0eUBXjsPQEDUw4h0=", KindSHA1},
		{"{SSHA}NJ2OHbz2w54wawd9DDPQvhSSGqJOYUNsMTIzNA==", KindSSHA},
		{"$apr1$saltsalt$r/QcFGT5pNL28bNkeDMHR.", KindAPR1},
		{"$1$saltsalt$ZliGyAN3DciDHEkDboonh/", KindMD5},
		{"$5$saltsalt$OIdfjX.u4Y3SJ4I2bX8w5BMf1VAUhHABNUirScDzZi3", KindSHA256},
		{"$6$saltsalt$8iYtNHxjWRl.NF6oNZ5tF.iKFlQREaXBLlSmZKP6dy9l5z3vsooWNW0/GZ6Nej73/TFug6pIPSqbJoCT6dfnj.", KindSHA512},
	} {
		p, err := ParsePassword(tc.stored)
		if err != nil {
			t.Fatalf("%s: %v", tc.kind, err)
		}
		if p.Kind() != tc.kind {
			t.Errorf("%q: kind %q, want %q", tc.stored, p.Kind(), tc.kind)
		}
		for i := 0; i < 2; i++ { // twice: the second may come from the success cache
			if !p.Match(pw) {
				t.Errorf("%s: correct password rejected (round %d)", tc.kind, i)
			}
		}
		for _, bad := range []string{"", "hunter", "hunter22", "Hunter2", tc.stored} {
			if p.Match(bad) && bad != pw {
				t.Errorf("%s: wrong password %q accepted", tc.kind, bad)
			}
		}
	}
}

func TestMalformedHash(t *testing.T) {
	for _, v := range []string{"$2y$10$short", "{SHA}not-base64!", "{SHA}AAAA", "$apr1$nosep", "$2b$xx$" + strings.Repeat("a", 53)} {
		_, err := ParsePassword(v)
		if err == nil {
			t.Errorf("%q: want an error", v)
			continue
		}
		if strings.Contains(err.Error(), v) {
			t.Errorf("error echoes the value: %v", err)
		}
	}
}

// TestDecoy: the decoy is a copy of the costliest stored password that matches nothing,
// not even that password's own secret.
func TestDecoy(t *testing.T) {
	b4, _ := bcrypt.GenerateFromPassword([]byte("four"), 4)
	b6, _ := bcrypt.GenerateFromPassword([]byte("six"), 6)
	parse := func(v string) *Password {
		p, err := ParsePassword(v)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	plain, low, high := parse("plain-pw"), parse(string(b4)), parse(string(b6))
	sha := parse("$6$rounds=5000$e4fb4910470fd97e$afWSvXIlcC4KnENaYStPG/ELJ.uBAnG7r/rFz8fkNwpkU.salSCchDjtxyh.qA.fftcd5hmIcem7A4oA76HCE0")
	cases := []struct {
		name   string
		ps     []*Password
		kind   string
		secret string // the costliest password's secret, which the decoy must refuse
	}{
		{"none", nil, KindPlain, ""},
		{"plaintext only", []*Password{plain}, KindPlain, "plain-pw"},
		{"bcrypt beats plaintext", []*Password{plain, low}, KindBcrypt, "four"},
		{"higher bcrypt cost wins", []*Password{high, plain, low}, KindBcrypt, "six"},
		{"sha512-crypt beats plaintext", []*Password{plain, sha}, KindSHA512, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := Decoy(tc.ps...)
			if d.Kind() != tc.kind {
				t.Fatalf("decoy kind %s, want %s", d.Kind(), tc.kind)
			}
			for _, s := range []string{"", "x", tc.secret, tc.secret} { // twice: no success cache
				if d.Match(s) {
					t.Fatalf("decoy matched %q", s)
				}
			}
		})
	}
	if Decoy(high).work <= Decoy(low).work {
		t.Fatal("a higher bcrypt cost is not ranked costlier")
	}
}

func TestKeySet(t *testing.T) {
	var k KeySet
	k.Add("alpha")
	k.Add("beta")
	k.Add("alpha") // duplicate: the first wins
	for _, tc := range []struct {
		in   string
		want int
	}{{"alpha", 0}, {"beta", 1}, {"gamma", -1}, {"", -1}, {"alph", -1}, {"alphaa", -1}} {
		if got := k.Index(tc.in); got != tc.want {
			t.Errorf("Index(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
	var empty KeySet
	if empty.Index("x") != -1 {
		t.Error("empty set matched")
	}
}

func FuzzParsePassword(f *testing.F) {
	for _, s := range []string{"plain", "$2y$10$abc", "{SHA}", "{SSHA}AAAA", "$apr1$a$b", "$5$rounds=1000$s$h", "$6$", "$1$$"} {
		f.Add(s, "x")
	}
	f.Fuzz(func(t *testing.T, stored, try string) {
		p, err := ParsePassword(stored)
		if err != nil {
			return
		}
		_ = p.Match(try)
		if p.Kind() == KindPlain && !strings.HasPrefix(stored, "{PLAIN}") && !p.Match(stored) {
			t.Fatalf("plaintext %q does not match itself", stored)
		}
	})
}
