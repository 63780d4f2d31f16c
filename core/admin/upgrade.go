package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/conduitproxy/conduit/core"
)

// UpgradeResult is a binary upgrade that succeeded: the new process serves.
type UpgradeResult struct {
	// PID is the new process's.
	PID int
	// Sockets are the listening sockets handed over (network/address).
	Sockets []string
	// TookMs is the time from starting the new process to its ready signal.
	TookMs int64
}

// ErrUpgradeBusy is what Options.Upgrade returns while another upgrade runs (409).
var ErrUpgradeBusy = errors.New("an upgrade is already in progress")

// upgrade is POST /upgrade: start the binary this process was started from, hand it every
// listener and wait until it serves. 200 means the new process serves and this one drains
// and exits; any error means this process keeps serving (the message says why).
func (a *API) upgrade(w http.ResponseWriter, r *http.Request) {
	if a.opts.Upgrade == nil {
		core.AdminError(w, http.StatusConflict, "binary upgrades need a process started by `conduit run`")
		return
	}
	// A client that goes away must not cancel an upgrade that is under way.
	res, err := a.opts.Upgrade(context.WithoutCancel(r.Context()))
	switch {
	case errors.Is(err, ErrUpgradeBusy):
		core.AdminError(w, http.StatusConflict, err.Error())
	case err != nil:
		core.AdminError(w, http.StatusInternalServerError, fmt.Sprintf("upgrade failed; this process keeps serving: %v", err))
	default:
		core.AdminJSON(w, http.StatusOK, map[string]any{
			"status": "ok", "pid": res.PID, "sockets": res.Sockets, "ready_ms": res.TookMs,
			"message": fmt.Sprintf("process %d serves; this one drains its requests and exits", res.PID),
		})
	}
}
