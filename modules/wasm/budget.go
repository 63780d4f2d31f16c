package wasm

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
)

// The per-request bounds a guest's host calls count against, in both ABIs: what the host
// keeps for a guest (header changes) and what it writes for one (log lines) would otherwise
// grow with every call a guest makes in a loop until timeoutMs.

// maxLogBytes bounds one log line of a guest (conduit_log, http-wasm's log).
const maxLogBytes = 4096

// maxGuestLogLines bounds the log lines a guest makes Conduit write for one request (its
// own log calls and the refusals of what it gave the host): a guest logging in a loop until
// timeoutMs would otherwise write tens of thousands of lines per request. The line past it
// says the rest are dropped.
const maxGuestLogLines = 100

// maxQuotedInput bounds how much of a value the guest gave a refusal's log line quotes.
const maxQuotedInput = 256

// quoteInput quotes a value the guest gave for a log line, cut to maxQuotedInput bytes.
func quoteInput(v string) string {
	if len(v) > maxQuotedInput {
		return strconv.Quote(v[:maxQuotedInput]) + "…"
	}
	return strconv.Quote(v)
}

// guestLogAllowed counts one more log line of a guest's request against maxGuestLogLines
// (n is the count so far, updated) and reports whether it may be written; the first line past
// the bound is replaced by one saying that the rest are dropped.
func guestLogAllowed(ctx context.Context, l *slog.Logger, n *int, file string) bool {
	*n++
	if *n == maxGuestLogLines+1 {
		l.WarnContext(ctx, "wasm: the guest's further log lines of this request are dropped", "guest", file, "limit", maxGuestLogLines)
	}
	return *n <= maxGuestLogLines
}

// maxHeaderChangeBytes bounds the bytes of header names and values a guest may give the
// functions that change headers while it serves one request (conduit ABI: its call;
// http-wasm: handle_request and handle_response); past it the guest fails. The host keeps
// what those functions are given, so without a bound a guest calling them in a loop until
// timeoutMs made the host hold about 170 MiB in 500 ms (docs/wasm.md, Header budget).
const maxHeaderChangeBytes = 1 << 20

// errHeaderBudget is the failure of a guest that went past maxHeaderChangeBytes.
var errHeaderBudget = fmt.Errorf("the guest changed more than %d bytes of headers in one request", maxHeaderChangeBytes)

// spendHeaderBytes adds n to spent, the bytes of header names and values a guest gave the
// functions that change headers in one request, and returns errHeaderBudget past
// maxHeaderChangeBytes.
func spendHeaderBytes(spent *int, n int) error {
	*spent += n
	if *spent > maxHeaderChangeBytes {
		return errHeaderBudget
	}
	return nil
}
