package wasm

import "github.com/conduitproxy/conduit/core/config"

// configTypes are the module's ConfigTypes: `global.wasm` and a `middleware[]` entry of type
// wasm (the key "middleware.wasm"), for `conduit schema`.
var configTypes = map[string]any{"wasm": globalSchema{}, "middleware.wasm": entrySchema{}}

// globalSchema describes `global.wasm` (globalConfig).
type globalSchema struct{}

// ConfigSchema implements config.SchemaProvider.
func (globalSchema) ConfigSchema() map[string]any {
	return config.AnnotateProperties(config.Schema(globalConfig{}), map[string]config.FieldDoc{
		"cacheDir":  {Description: "where compiled guests are kept between restarts; <user cache dir>/conduit/wasm when empty"},
		"diskCache": {Description: "false keeps compiled guests in memory only", Default: true},
	})
}

// entrySchema describes a `middleware[]` entry of type wasm (entryConfig, checkEntry).
type entrySchema struct{}

// ConfigSchema implements config.SchemaProvider.
func (entrySchema) ConfigSchema() map[string]any {
	return config.AnnotateProperties(config.Schema(entryConfig{}), map[string]config.FieldDoc{
		"path":           {Description: "the guest's .wasm file"},
		"config":         {Description: "any value, handed to the guest as JSON"},
		"phase":          {Description: "request (default) or response", Enum: []string{"", "request", "response"}, Default: "request"},
		"abi":            {Description: "the guest's ABI; auto finds it from the guest's imports and exports", Enum: []string{"", "auto", abiConduit, abiHTTPWasm}, Default: "auto"},
		"memoryLimitMiB": {Description: "caps the linear memory of one guest instance", Default: DefaultMemoryLimitMiB, Minimum: 1, Maximum: maxMemoryLimitMiB},
		"timeoutMs":      {Description: "bounds one call into the guest, instantiation included", Default: DefaultTimeout.Milliseconds(), Minimum: 1, Maximum: maxTimeout.Milliseconds()},
		"onError":        {Description: "a guest that traps, runs out of time or lacks an export lets the request pass (allow) or answers 500 (deny)", Enum: []string{"", "allow", "deny"}, Default: "allow"},
		"instances":      {Description: "fresh instantiates the guest for every request; reset keeps instances and restores their state after each request; reuse keeps them as they are", Enum: []string{"", instancesReset, instancesFresh, instancesReuse}, Default: DefaultInstances},
		"env":            {Description: "environment variables the guest sees (WASI)"},
		"mounts":         {Description: "host directories the guest sees, read-only: HOST:GUEST or DIR, absolute paths (an optional :ro suffix is accepted)"},
	})
}
