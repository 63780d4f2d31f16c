package cli

import (
	"fmt"
	"log/slog"
	"strings"
)

// levelOff silences the process log (RUST_LOG=off): above every level slog uses.
const levelOff = slog.LevelError + 4

// logLevel decides the process log level: the --log-level flag, else CONDUIT_LOG, else the
// level RUST_LOG gives Conduit (see rustLogLevel and docs/configuration.md), else info. A
// flag or CONDUIT_LOG value that is not debug, info, warn or error is an error (RUST_LOG
// directives Conduit cannot express are ignored, as env_logger ignores unknown targets).
func logLevel(env *Env, flag string) (slog.Level, error) {
	if flag != "" {
		return parseLevel("--log-level", flag)
	}
	if v, ok := env.LookupEnv("CONDUIT_LOG"); ok && v != "" {
		return parseLevel("CONDUIT_LOG", v)
	}
	if v, ok := env.LookupEnv("RUST_LOG"); ok {
		if lv, ok := rustLogLevel(v); ok {
			return lv, nil
		}
	}
	return slog.LevelInfo, nil
}

// parseLevel reads debug, info, warn or error from the setting named by what.
func parseLevel(what, s string) (slog.Level, error) {
	if lv, ok := levelName(s); ok && lv != levelOff {
		return lv, nil
	}
	return slog.LevelInfo, fmt.Errorf("%s: unknown log level %q (debug, info, warn or error)", what, s)
}

// levelName maps a level name of CONDUIT_LOG or RUST_LOG to a slog level: trace counts as
// debug (slog has nothing finer), off silences everything.
func levelName(s string) (slog.Level, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "trace", "debug":
		return slog.LevelDebug, true
	case "info":
		return slog.LevelInfo, true
	case "warn", "warning":
		return slog.LevelWarn, true
	case "error":
		return slog.LevelError, true
	case "off":
		return levelOff, true
	}
	return 0, false
}

// rustLogLevel reads the level Conduit takes from an env_logger / tracing filter such as
// "debug", "conduit=debug,hyper=info" or "info,conduit_runtime=trace": the directive for a
// target named conduit or conduit_* (the original's crate names, docs/compatibility.md) if any, the last one winning,
// else the bare default level. Per-target levels of other crates and span or regex filters
// have no Conduit equivalent and are ignored. ok is false when nothing applies.
func rustLogLevel(spec string) (lv slog.Level, ok bool) {
	var def, own slog.Level
	var hasDef, hasOwn bool
	for _, dir := range strings.Split(spec, ",") {
		dir, _, _ = strings.Cut(dir, "/") // a regex filter on the message
		if i := strings.IndexByte(dir, '['); i >= 0 {
			// A span filter, target[span{field=value}], may hold "=" itself.
			if j := strings.LastIndexByte(dir, ']'); j > i {
				dir = dir[:i] + dir[j+1:]
			}
		}
		target, level, hasLevel := strings.Cut(strings.TrimSpace(dir), "=")
		target = strings.TrimSpace(target)
		if !hasLevel {
			// A bare level is the default; a bare target enables everything for it.
			if l, isLevel := levelName(target); isLevel {
				def, hasDef = l, true
			} else if conduitTarget(target) {
				own, hasOwn = slog.LevelDebug, true
			}
			continue
		}
		l, valid := levelName(level)
		if !valid {
			continue
		}
		switch {
		case target == "":
			def, hasDef = l, true
		case conduitTarget(target):
			own, hasOwn = l, true
		}
	}
	if hasOwn {
		return own, true
	}
	return def, hasDef
}

// conduitTarget reports whether a RUST_LOG target names Conduit: "conduit", a module path
// under it ("conduit::proxy") or one of its crates ("conduit_runtime").
func conduitTarget(t string) bool {
	t = strings.ToLower(t)
	return t == "conduit" || strings.HasPrefix(t, "conduit::") || strings.HasPrefix(t, "conduit_") || strings.HasPrefix(t, "conduit-")
}
