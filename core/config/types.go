package config

import (
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Secret is a string that never prints: String, GoString, slog and JSON output show
// "[REDACTED]". Use it for tokens, passwords and keys.
type Secret string

const redacted = "[REDACTED]"

// String implements fmt.Stringer.
func (Secret) String() string { return redacted }

// GoString implements fmt.GoStringer.
func (Secret) GoString() string { return redacted }

// LogValue implements slog.LogValuer.
func (Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON implements json.Marshaler.
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// Reveal returns the secret's value, for the one place that must compare or send it.
func (s Secret) Reveal() string { return string(s) }

// UnmarshalConfig implements Unmarshaler: the scalar's text. When the diagnostics track
// substitutions (Diagnostics.Track), a value that still references an unset $NAME is an
// error naming the variable: the placeholder, which anyone can read in the file, must not
// become a token or password. A modular-crypt hash ($2y$…, $apr1$…, $6$…) is a value, not a
// reference. A value that is only "${NAME}" (a syntax Conduit does not expand) is an error
// too.
func (s *Secret) UnmarshalConfig(n Node, path string, d *Diagnostics) {
	str, ok := scalarString(n)
	if !ok {
		d.Errorf(path, "must be a string, got %s", d.describe(n))
		return
	}
	*s = Secret(str)
	switch unset := d.Unset(str); {
	case len(unset) > 0 && !cryptHash.MatchString(str):
		d.Errorf(path, "environment variable %s is not set; a secret cannot be the literal placeholder (set the variable)", strings.Join(unset, ", "))
	case strings.HasPrefix(str, "${") && LooksLikeReference(str):
		d.Errorf(path, "${NAME} is not expanded (write $%s); a secret cannot be the literal placeholder", str[2:len(str)-1])
	}
}

// cryptHash matches the start of a modular-crypt password hash: "$id$" with a lower-case
// or numeric id.
var cryptHash = regexp.MustCompile(`^\$[a-z0-9]+\$`)

// RedactURL hides the password (and a user-only credential) of a URL such as
// redis://user:pass@host:6379, for logs and error messages.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	} else {
		u.User = url.User("xxxxx")
	}
	return strings.Replace(u.String(), "xxxxx", redacted, 1)
}

// Humantime is a duration written as "30s", "5m", "12h", "7d", "1y" or a bare number of
// seconds, as `staticOptions.maxAge` takes (docs/static.md).
type Humantime time.Duration

// UnmarshalConfig implements Unmarshaler.
func (h *Humantime) UnmarshalConfig(n Node, path string, d *Diagnostics) {
	if f, ok := number(n); ok {
		if f < 0 {
			d.Errorf(path, "must not be negative")
			return
		}
		*h = Humantime(time.Duration(f * float64(time.Second)))
		return
	}
	s, ok := n.(string)
	if !ok {
		d.Errorf(path, "must be a duration such as \"30s\", \"1d\" or \"1y\", got %s", d.describe(n))
		return
	}
	dur, err := ParseHumantime(s)
	if err != nil && d.subs.FromEnvironment(s) {
		d.Errorf(path, "must be a duration such as \"30s\", \"1d\" or \"1y\", got %s", d.describe(n))
		return
	}
	if err != nil {
		d.Errorf(path, "%v", err)
		return
	}
	*h = Humantime(dur)
}

// ParseHumantime parses "1y", "2w", "7d", "12h", "30m", "45s", "500ms", combinations such as
// "1h30m", and a bare number of seconds.
func ParseHumantime(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("empty duration")
	}
	if n, err := strconv.ParseUint(s, 10, 63); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	var total time.Duration
	rest := strings.ReplaceAll(s, " ", "")
	for rest != "" {
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 0 {
			return 0, fmt.Errorf("invalid duration %q: expected a number", s)
		}
		n, err := strconv.ParseInt(rest[:i], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		rest = rest[i:]
		j := 0
		for j < len(rest) && (rest[j] < '0' || rest[j] > '9') {
			j++
		}
		unit := rest[:j]
		rest = rest[j:]
		var mult time.Duration
		switch unit {
		case "ms":
			mult = time.Millisecond
		case "s", "sec", "secs":
			mult = time.Second
		case "m", "min", "mins":
			mult = time.Minute
		case "h", "hr", "hrs":
			mult = time.Hour
		case "d", "day", "days":
			mult = 24 * time.Hour
		case "w", "week", "weeks":
			mult = 7 * 24 * time.Hour
		case "M", "month", "months":
			mult = 30 * 24 * time.Hour
		case "y", "year", "years":
			mult = 365 * 24 * time.Hour
		default:
			return 0, fmt.Errorf("invalid duration %q: unknown unit %q", s, unit)
		}
		if n > int64(math.MaxInt64/mult) {
			return 0, fmt.Errorf("invalid duration %q: too large", s)
		}
		total += time.Duration(n) * mult
	}
	return total, nil
}
