// Package minimal is the minimal bundle: the core features every Conduit build has (proxy,
// static files, fallback, health). Import it for its side effects.
package minimal
