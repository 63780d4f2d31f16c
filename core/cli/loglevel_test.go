package cli

import (
	"log/slog"
	"testing"
)

func TestLogLevel(t *testing.T) {
	for _, tc := range []struct {
		flag, conduitLog, rustLog string
		want                      slog.Level
		bad                       bool
	}{
		{"", "", "", slog.LevelInfo, false},
		{"", "", "debug", slog.LevelDebug, false},
		{"", "", "conduit=debug,hyper=info", slog.LevelDebug, false},
		{"", "", "hyper=info,conduit=debug", slog.LevelDebug, false},
		{"", "", "warn,conduit_runtime=trace", slog.LevelDebug, false},
		{"", "", "info,conduit=error", slog.LevelError, false},
		{"", "", "conduit::proxy=warn", slog.LevelWarn, false},
		{"", "", "hyper=debug", slog.LevelInfo, false},
		{"", "", "error", slog.LevelError, false},
		{"", "", "conduit", slog.LevelDebug, false},
		{"", "", "off", levelOff, false},
		{"", "", "conduit[req{id=1}]=debug", slog.LevelDebug, false},
		{"", "", "debug/^GET", slog.LevelDebug, false},
		{"", "", "conduit=loud", slog.LevelInfo, false},
		{"", "", "conduitx=debug", slog.LevelInfo, false},
		{"", "", " , ,", slog.LevelInfo, false},
		{"", "warn", "debug", slog.LevelWarn, false},
		{"", "info", "conduit=debug", slog.LevelInfo, false},
		{"error", "warn", "debug", slog.LevelError, false},
		{"", "off", "", slog.LevelInfo, true}, // CONDUIT_LOG knows debug, info, warn, error
		{"", "verbose", "", slog.LevelInfo, true},
		{"loud", "", "", slog.LevelInfo, true},
		{"", "DEBUG", "", slog.LevelDebug, false},
	} {
		env := &Env{LookupEnv: func(k string) (string, bool) {
			switch k {
			case "CONDUIT_LOG":
				return tc.conduitLog, tc.conduitLog != ""
			case "RUST_LOG":
				return tc.rustLog, tc.rustLog != ""
			}
			return "", false
		}}
		got, err := logLevel(env, tc.flag)
		if got != tc.want || (err != nil) != tc.bad {
			t.Errorf("flag %q CONDUIT_LOG %q RUST_LOG %q: %v %v, want %v (error %v)", tc.flag, tc.conduitLog, tc.rustLog, got, err, tc.want, tc.bad)
		}
	}
}

func FuzzRustLogLevel(f *testing.F) {
	for _, s := range []string{"debug", "conduit=debug,hyper=info", "a[b{c=d}]=e/f", ",=,", "conduit=="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		lv, ok := rustLogLevel(s)
		if ok && lv != slog.LevelDebug && lv != slog.LevelInfo && lv != slog.LevelWarn && lv != slog.LevelError && lv != levelOff {
			t.Fatalf("%q gave level %v", s, lv)
		}
	})
}
