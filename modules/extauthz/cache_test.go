package extauthz

import (
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/types/known/structpb"
)

func TestDecisionCacheBounds(t *testing.T) {
	now := time.Now()
	ok := &authv3.CheckResponse{Status: &status.Status{}}
	c := &decisionCache{ttl: time.Second, max: 2, m: map[[32]byte]cached{}}
	k := func(b byte) [32]byte { return [32]byte{b} }
	c.put(k(1), ok, now)
	c.put(k(2), ok, now)
	c.put(k(3), ok, now) // full of live decisions: not kept
	if c.get(k(3), now) != nil || c.get(k(1), now) == nil {
		t.Fatal("a full cache evicted a live decision or kept a new one")
	}
	later := now.Add(2 * time.Second)
	if c.get(k(1), later) != nil {
		t.Fatal("an expired decision was reused")
	}
	c.put(k(3), ok, later) // k(2) has expired: swept, room for k(3)
	if c.get(k(3), later) == nil {
		t.Fatal("expired decisions were not swept from a full cache")
	}
	errResp := &authv3.CheckResponse{Status: &status.Status{Code: 14},
		HttpResponse: &authv3.CheckResponse_ErrorResponse{ErrorResponse: &authv3.DeniedHttpResponse{}}}
	c2 := &decisionCache{ttl: time.Second, max: 10, m: map[[32]byte]cached{}}
	c2.put(k(1), errResp, now)
	huge, _ := structpb.NewStruct(map[string]any{CacheTTLKey: 1e15})
	c2.put(k(2), &authv3.CheckResponse{Status: &status.Status{}, DynamicMetadata: huge}, now)
	if c2.get(k(1), now) != nil {
		t.Fatal("an error_response was kept")
	}
	if c2.get(k(2), now.Add(maxCacheTTL+time.Second)) != nil {
		t.Fatal("a service TTL beyond maxCacheTTL was honoured")
	}
}
