package cli

import (
	"log/slog"
	"testing"
)

func TestLogLevel(t *testing.T) {
	for _, tc := range []struct {
		flag, conduitLog, rustLog string
		want                      slog.Level
	}{
		{"", "", "", slog.LevelInfo},
		{"", "", "debug", slog.LevelDebug},
		{"", "", "conduit=debug,hyper=info", slog.LevelDebug},
		{"", "", "hyper=info,conduit=debug", slog.LevelDebug},
		{"", "", "warn,conduit_runtime=trace", slog.LevelDebug},
		{"", "", "info,conduit=error", slog.LevelError},
		{"", "", "conduit::proxy=warn", slog.LevelWarn},
		{"", "", "hyper=debug", slog.LevelInfo},
		{"", "", "error", slog.LevelError},
		{"", "", "conduit", slog.LevelDebug},
		{"", "", "off", levelOff},
		{"", "", "conduit[req{id=1}]=debug", slog.LevelDebug},
		{"", "", "debug/^GET", slog.LevelDebug},
		{"", "", "conduit=loud", slog.LevelInfo},
		{"", "", "conduitx=debug", slog.LevelInfo},
		{"", "", " , ,", slog.LevelInfo},
		{"", "warn", "debug", slog.LevelWarn},
		{"", "info", "conduit=debug", slog.LevelInfo},
		{"error", "warn", "debug", slog.LevelError},
		{"", "off", "", slog.LevelInfo}, // CONDUIT_LOG knows debug, info, warn, error
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
		if got := logLevel(env, tc.flag); got != tc.want {
			t.Errorf("flag %q CONDUIT_LOG %q RUST_LOG %q: %v, want %v", tc.flag, tc.conduitLog, tc.rustLog, got, tc.want)
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
