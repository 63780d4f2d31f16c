package core

import "github.com/conduitproxy/conduit/core/config"

// MiddlewareSpec is one entry of a site's `middleware[]` list, as the core hands it to the
// module registered for its type.
//
// The core owns the list: it checks that every entry is an object with a known `type`,
// dispatches each entry to the module whose MiddlewareTypes contain that type, and composes
// the results at StageScripts. Entries run in declaration order on the way in, so the first
// one to answer (abort) wins and the later ones never run. An entry whose Middleware also
// implements ResponsePhase and reports true is a response-phase entry: response-phase
// entries sit inside the request-phase ones and see the response in declaration order too,
// so when two of them replace the body the last one declared wins (docs/scripting.md).
type MiddlewareSpec struct {
	// Type is the entry's `type` ("script", "wasm", "traefik").
	Type string
	// Index is the entry's position in the list.
	Index int
	// Path is the entry's diagnostic path ("sites[0].middleware[2]"); errors about its keys
	// are recorded below it.
	Path string
	// Node is the whole entry, `type` included; the module decodes the rest of its keys
	// strictly (a key it does not know is an error at its path).
	Node map[string]config.Node
}

// ResponsePhase is implemented by a `middleware[]` entry's Middleware that only works on
// the response (the entry's `phase: response`); see MiddlewareSpec for the order.
type ResponsePhase interface {
	// ResponsePhase reports whether the entry runs in the response phase only.
	ResponsePhase() bool
}
