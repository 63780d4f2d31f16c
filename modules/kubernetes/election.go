package kubernetes

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	coordinationv1 "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// fieldManager is the field manager of the status patches.
const fieldManager = "conduit"

// mergePatch is the patch type of the status writes: a JSON merge patch of {status}.
const mergePatch = types.MergePatchType

// randRead fills b with random bytes.
var randRead = rand.Read

// startElection contends for the Lease until the source stops: while this replica holds it,
// it writes statuses. Losing the Lease (the API server unreachable for RenewDeadline) stops
// the writing and the replica contends again.
func (s *Source) startElection() error {
	coord, err := coordinationv1.NewForConfig(s.opts.Config)
	if err != nil {
		return fmt.Errorf("kubernetes lease client: %w", err)
	}
	cfg := leaderelection.LeaderElectionConfig{
		Lock: &resourcelock.LeaseLock{
			LeaseMeta:  metav1.ObjectMeta{Namespace: s.opts.LeaseNamespace, Name: s.opts.LeaseName},
			Client:     coord,
			LockConfig: resourcelock.ResourceLockConfig{Identity: s.opts.Identity},
		},
		LeaseDuration:   orDefault(s.opts.LeaseDuration, 15*time.Second),
		RenewDeadline:   orDefault(s.opts.RenewDeadline, 10*time.Second),
		RetryPeriod:     orDefault(s.opts.RetryPeriod, 2*time.Second),
		ReleaseOnCancel: true,
		Name:            s.opts.LeaseName,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(context.Context) {
				s.log.Info("kubernetes: this replica writes ConduitSite statuses", "lease", s.opts.LeaseNamespace+"/"+s.opts.LeaseName, "identity", s.opts.Identity)
				s.leader.Store(true)
				select {
				case s.wake <- struct{}{}:
				default:
				}
			},
			OnStoppedLeading: func() { s.leader.Store(false) },
		},
	}
	if _, err := leaderelection.NewLeaderElector(cfg); err != nil {
		return fmt.Errorf("kubernetes lease: %w", err)
	}
	go func() {
		for s.ctx.Err() == nil {
			le, err := leaderelection.NewLeaderElector(cfg)
			if err != nil {
				return
			}
			le.Run(s.ctx)
		}
	}()
	return nil
}

// orDefault returns d, or def when d is not positive.
func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}
