package upload

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestStoredExt(t *testing.T) {
	for in, want := range map[string]string{
		"photo.JPG": ".jpg", "a.tar.gz": ".gz", "noext": "", "trailing.": "", ".htaccess": ".htaccess",
		"../../x.sh": ".sh", "x.ph p": "", "x.ü": "", "x.12345678901": "", "x.1234567890": ".1234567890",
		"x.php\x00.png": ".png", "x.png\x00": "", "x./": "", `x.a\b`: "",
	} {
		if got := storedExt(in); got != want {
			t.Errorf("storedExt(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDisplayName(t *testing.T) {
	long := strings.Repeat("é", 200)
	for in, want := range map[string]string{
		"ok.txt": "ok.txt", "a\x00b\nc\x7f": "abc", "\xff.txt": "\uFFFD.txt", long: long[:254],
	} {
		if got := displayName(in); got != want {
			t.Errorf("displayName(%q) = %q, want %q", in, got, want)
		}
	}
}

var stored = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}(\.[a-z0-9]{1,10})?$`)

// FuzzStoredName: whatever file name a client sends, the stored name is a UUID v4 and at
// most a short lower-case alphanumeric extension (no separator, no dot segment, no NUL),
// and the name echoed back is valid UTF-8 without control characters, at most 255 bytes.
func FuzzStoredName(f *testing.F) {
	for _, s := range []string{"a.png", "../../etc/passwd", "C:\\x\\y.exe", "a\x00.png", ".", "..", strings.Repeat("x", 300) + ".txt"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if s := newUUID() + storedExt(name); !stored.MatchString(s) {
			t.Fatalf("%q stored as %q", name, s)
		}
		d := displayName(name)
		if len(d) > 255 || !utf8.ValidString(d) || strings.ContainsFunc(d, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			t.Fatalf("%q displayed as %q", name, d)
		}
	})
}
