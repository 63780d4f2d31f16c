package server

import (
	"context"
	"os"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/config"
)

// FileSource is the default configuration source: a config file, with $VAR references
// substituted from the process environment at each load.
type FileSource string

var _ core.ConfigSource = FileSource("")

// Load reads and parses the file.
func (f FileSource) Load(context.Context) (*config.Document, error) {
	return config.LoadFile(string(f), os.LookupEnv)
}

// String returns the file path.
func (f FileSource) String() string { return string(f) }

// LoadSource loads a document from src and builds a generation from it (see Build).
func LoadSource(ctx context.Context, src core.ConfigSource, opts BuildOptions) (*Generation, *config.Diagnostics, error) {
	doc, err := src.Load(ctx)
	if err != nil {
		return nil, nil, err
	}
	g, d := Build(ctx, doc, opts)
	return g, d, nil
}

// Report tells src the outcome of its last Load when it is a core.ConfigReporter.
func Report(src core.ConfigSource, d *config.Diagnostics, err error) {
	if r, ok := src.(core.ConfigReporter); ok {
		r.Report(d, err)
	}
}
