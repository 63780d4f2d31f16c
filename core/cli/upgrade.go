package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/admin"
	"github.com/conduitproxy/conduit/core/handoff"
	"github.com/conduitproxy/conduit/core/sdnotify"
	"github.com/conduitproxy/conduit/core/server"
)

func init() {
	RegisterCommand(Command{Name: "upgrade", Summary: "replace a running Conduit by its binary on disk without dropping a connection (POST /upgrade; SIGUSR2 does the same)", Run: runUpgrade})
}

// runUpgrade is `conduit upgrade`: POST /upgrade, which returns once the new process serves
// (exit 0) or the attempt failed and the old process keeps serving (exit 1).
func runUpgrade(env *Env, args []string) int {
	af, code, ok := FlagsOnlyAdminCommand(env, "upgrade", args, nil)
	if !ok {
		return code
	}
	var out struct {
		Message string   `json:"message"`
		PID     int      `json:"pid"`
		Sockets []string `json:"sockets"`
	}
	if code, done := af.fetch(env, http.MethodPost, "/upgrade", &out); done {
		return code
	}
	fmt.Fprintf(env.Stdout, "upgraded: %s\n", out.Message)
	if len(out.Sockets) > 0 {
		fmt.Fprintf(env.Stdout, "handed over: %s\n", strings.Join(out.Sockets, ", "))
	}
	return 0
}

// upgrades is the binary upgrade of a serving process (docs/deployment.md): the sockets it
// adopted or opened, the upgrader that hands them to the binary on disk, the PID file and
// the systemd notifications.
type upgrades struct {
	log     *slog.Logger
	lookup  func(string) (string, bool)
	sockets *handoff.Sockets
	up      *handoff.Upgrader
	// pathErr is why the executable path could not be resolved at start (upgrades fail with it).
	pathErr error
	// ctx ends when the process stops serving; an upgrade under way is cancelled with it.
	ctx context.Context
	// drain starts the graceful exit after a successful upgrade.
	drain   func()
	pidFile string

	mu       sync.Mutex
	upgraded atomic.Int64 // the new process's PID once an upgrade succeeded
}

// newUpgrades reads the hand-off this process may have been started with and resolves the
// path of its binary now, before anything can change the working directory or PATH.
func newUpgrades(env *Env, log *slog.Logger) (*upgrades, error) {
	sockets, err := handoff.Inherit(env.LookupEnv, func(k string) { _ = os.Unsetenv(k) })
	if err != nil {
		return nil, err
	}
	u := &upgrades{log: log, lookup: env.LookupEnv, sockets: sockets, ctx: context.Background()}
	path, perr := handoff.Executable(os.Args[0], env.Dir)
	u.pathErr = perr
	startEnv := os.Environ()
	u.up = &handoff.Upgrader{Path: path, Argv0: os.Args[0], Args: append([]string(nil), os.Args[1:]...),
		Env: func() []string { return startEnv }, Sockets: sockets}
	return u, nil
}

// serverOptions makes the server open (or adopt) its listeners through the hand-off.
func (u *upgrades) serverOptions(o *server.Options) {
	o.Listen = func(host string, port int) (net.Listener, error) {
		return u.sockets.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	}
	o.ListenPacket = func(addr string) (net.PacketConn, error) {
		return u.sockets.ListenPacket("udp", addr)
	}
}

// started runs once the server and the Admin API serve: it closes inherited sockets the
// configuration no longer uses, writes the PID file and tells whoever started the process
// that it is ready (the old process of an upgrade over the readiness pipe, else systemd).
func (u *upgrades) started(g *server.Generation) error {
	for _, k := range u.sockets.CloseUnused() {
		u.log.Warn("upgrade: inherited socket not in the configuration; closed", "socket", k)
	}
	u.pidFile = g.Global.PIDFile
	if err := u.writePID(os.Getpid()); err != nil {
		return err
	}
	if u.sockets.Child() {
		if err := u.sockets.Ready(); err != nil {
			return err
		}
		u.log.Info("upgrade: serving on the inherited sockets; the old process drains")
		return nil
	}
	if sent, err := sdnotify.Notify(u.lookup, "READY=1"); err != nil {
		u.log.Warn("systemd notification", "err", err)
	} else if sent {
		u.log.Debug("systemd notified: READY=1")
	}
	return nil
}

// writePID writes pid to global.pidFile, when set.
func (u *upgrades) writePID(pid int) error {
	if u.pidFile == "" {
		return nil
	}
	if err := core.WriteFileAtomic(u.pidFile, []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		return fmt.Errorf("global.pidFile: %w", err)
	}
	return nil
}

// removePID removes global.pidFile at exit when it still holds this process's PID (after an
// upgrade it holds the new process's).
func (u *upgrades) removePID() {
	if u.pidFile == "" {
		return
	}
	b, err := os.ReadFile(u.pidFile)
	if err == nil && strings.TrimSpace(string(b)) == strconv.Itoa(os.Getpid()) {
		_ = os.Remove(u.pidFile)
	}
}

// errHandedOver is the answer to an upgrade of a process that already handed over.
var errHandedOver = errors.New("this process has handed its sockets to a new one and is draining")

// upgrade runs one upgrade (SIGUSR2 or POST /upgrade). On success it tells systemd the new
// main PID and starts this process's drain; on failure this process keeps serving and its
// PID stays in the PID file.
func (u *upgrades) upgrade(ctx context.Context) (*admin.UpgradeResult, error) {
	if !u.mu.TryLock() {
		return nil, admin.ErrUpgradeBusy
	}
	defer u.mu.Unlock()
	if pid := u.upgraded.Load(); pid != 0 {
		return nil, fmt.Errorf("%w (process %d)", errHandedOver, pid)
	}
	if u.pathErr != nil {
		return nil, fmt.Errorf("the binary's path was not resolved at start: %w", u.pathErr)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(u.ctx, cancel)()
	u.log.Info("upgrade: starting the new binary", "path", u.up.Path)
	res, err := u.up.Upgrade(ctx)
	if err != nil {
		if errors.Is(err, handoff.ErrInProgress) {
			return nil, admin.ErrUpgradeBusy
		}
		u.log.Error("upgrade failed; this process keeps serving", "err", err)
		if perr := u.writePID(os.Getpid()); perr != nil {
			u.log.Error("upgrade: restore the PID file", "err", perr)
		}
		return nil, err
	}
	u.upgraded.Store(int64(res.PID))
	u.log.Info("upgrade: the new process serves; draining this one", "pid", res.PID, "ready_after", res.Took.Round(time.Millisecond), "sockets", strings.Join(res.Sockets, " "))
	if _, err := sdnotify.Notify(u.lookup, "MAINPID="+strconv.Itoa(res.PID)); err != nil {
		u.log.Warn("systemd notification", "err", err)
	}
	if u.drain != nil {
		u.drain()
	}
	return &admin.UpgradeResult{PID: res.PID, Sockets: res.Sockets, TookMs: res.Took.Milliseconds()}, nil
}

// handedOver reports whether an upgrade succeeded (this process drains and exits).
func (u *upgrades) handedOver() bool { return u.upgraded.Load() != 0 }

// onSignal runs an upgrade for each signal on sig until ctx ends; the outcome is logged.
func (u *upgrades) onSignal(ctx context.Context, sig <-chan os.Signal) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-sig:
			if _, err := u.upgrade(ctx); errors.Is(err, admin.ErrUpgradeBusy) || errors.Is(err, errHandedOver) {
				u.log.Warn("SIGUSR2 ignored", "err", err)
			}
		}
	}
}
