// Package minimal is the minimal bundle: the core features every Conduit build has (proxy,
// static files, fallback, health, …). Import it for its side effects.
//
// Each feature is one file, maybe_<feature>.go, holding a single blank import behind the
// build tag `!conduit_omit_<feature>`, so `go build -tags conduit_omit_<feature>` drops a
// feature without any tooling.
package minimal
