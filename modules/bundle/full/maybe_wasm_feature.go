//go:build !conduit_omit_wasm

package full

//conduit:alias plugin-wasm
import _ "github.com/conduitproxy/conduit/modules/wasm"
