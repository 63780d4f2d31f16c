package symbols

import (
	"bytes"
	"os"
	"testing"

	"github.com/traefik/yaegi/extract"
)

// TestSymbolsAreCurrent regenerates the conduit/script symbol table in memory, as the
// go:generate line does, and fails when the committed file is stale.
func TestSymbolsAreCurrent(t *testing.T) {
	if testing.Short() {
		t.Skip("type-checks net/http from source")
	}
	const pkg = "github.com/conduitproxy/conduit/modules/script/api"
	ext := extract.Extractor{Dest: "symbols"}
	var buf bytes.Buffer
	if _, err := ext.Extract(pkg, "symbols", &buf); err != nil {
		t.Fatal(err)
	}
	committed, err := os.ReadFile("github_com-conduitproxy-conduit-modules-script-api.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), committed) {
		t.Fatal("the conduit/script symbol table is stale: run go generate ./modules/script/api/symbols")
	}
	if _, ok := Symbols[pkg+"/script"]["Abort"]; !ok {
		t.Fatalf("no Abort in %v", Symbols)
	}
}
