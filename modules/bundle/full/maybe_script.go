//go:build !conduit_omit_script

//conduit:alias rhai
//conduit:alias script-rhai

package full

import _ "github.com/conduitproxy/conduit/modules/script"
