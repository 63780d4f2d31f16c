package script

import "github.com/conduitproxy/conduit/core/config"

// configTypes are the module's ConfigTypes: a `middleware[]` entry of type script or traefik
// (the keys "middleware.script" and "middleware.traefik"), for `conduit schema`.
var configTypes = map[string]any{"middleware.script": entrySchema{}, "middleware.traefik": entrySchema{plugin: true}}

// entrySchema describes an Entry as build and validEntry accept it. An unknown key is an
// error there (knownKeys), so the schema admits no other key.
type entrySchema struct {
	// plugin is a traefik entry: phase is request only and onError's deny is allowed.
	plugin bool
}

// ConfigSchema implements config.SchemaProvider.
func (e entrySchema) ConfigSchema() map[string]any {
	phases := []string{"", "request", "response"}
	if e.plugin {
		phases = []string{"", "request"}
	}
	return config.Closed(config.AnnotateProperties(config.Schema(Entry{}), map[string]config.FieldDoc{
		"path":         {Description: "the script (a .go file or a directory of one package) or, for traefik, the plugin's directory (plugins-local/src/<module path>, holding .traefik.yml)"},
		"config":       {Description: "any value, handed to the script (script.Config) or decoded into the plugin's CreateConfig() value"},
		"phase":        {Description: "request (default) or response (scripts only; onError: deny cannot apply there)", Enum: phases, Default: "request"},
		"timeoutMs":    {Description: "the budget of one call, next excluded; 0 runs the script on the request's goroutine without a budget", Default: defaultTimeoutMs, Minimum: 0, Maximum: maxTimeoutMs},
		"onError":      {Description: "continue (the request goes on without the script) or deny (500) for a call that panics or runs past its budget", Enum: []string{"", "continue", "deny"}, Default: "continue"},
		"unrestricted": {Description: "gives the script the whole standard library instead of the sandbox", Default: false},
	}))
}
