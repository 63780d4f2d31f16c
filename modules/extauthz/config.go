package extauthz

import (
	"fmt"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/config"
	"github.com/conduitproxy/conduit/core/skippaths"
	"github.com/conduitproxy/conduit/modules/envoyext"
)

// Config is one `extAuthz` block (a site's or a proxy route's).
type Config struct {
	// GRPC is the authorization service: "host:port", or "dns:///host:port" to balance
	// round-robin across every address the name resolves to.
	GRPC string `json:"grpc" cfg:"required" doc:"the authorization service: host:port, or dns:///host:port to balance round-robin across every address the name resolves to"`
	// TimeoutMs bounds each Check call; default 200, as Envoy's.
	TimeoutMs *uint64 `json:"timeoutMs" default:"200" minimum:"1" doc:"bounds each Check call"`
	// FailureModeAllow lets requests through when the service fails; default false.
	FailureModeAllow bool `json:"failureModeAllow" default:"false" doc:"lets requests through when the service fails"`
	// FailureModeAllowHeaderAdd adds x-envoy-auth-failure-mode-allowed: true to a request
	// let through on failure.
	FailureModeAllowHeaderAdd bool `json:"failureModeAllowHeaderAdd" default:"false" doc:"adds x-envoy-auth-failure-mode-allowed: true to a request let through on failure"`
	// StatusOnError is the status of a request denied because the service failed; default
	// 403, as Envoy's.
	StatusOnError *uint64 `json:"statusOnError" default:"403" minimum:"400" maximum:"599" doc:"the status of a request denied because the service failed"`
	// WithRequestBody sends (the start of) the request body in the CheckRequest.
	WithRequestBody *BodyConfig `json:"withRequestBody" doc:"sends (the start of) the request body in the CheckRequest"`
	// IncludePeerCertificate sends the client's verified mTLS certificate.
	IncludePeerCertificate bool `json:"includePeerCertificate" default:"false" doc:"sends the client's verified mTLS certificate"`
	// ContextExtensions are sent as the CheckRequest's context_extensions.
	ContextExtensions map[string]string `json:"contextExtensions" doc:"sent as the CheckRequest's context_extensions"`
	// Metadata is sent as the CheckRequest's metadata_context.filter_metadata: namespace →
	// object.
	Metadata map[string]map[string]any `json:"metadata" doc:"sent as the CheckRequest's metadata_context.filter_metadata: namespace → object"`
	// DecisionCache reuses decisions for identical requests (off without it).
	DecisionCache *CacheConfig `json:"decisionCache" doc:"reuses decisions for identical requests (off without it)"`
	// SkipPaths are exempt paths (core/skippaths).
	SkipPaths []string `json:"skipPaths" doc:"exempt paths: exact paths and /** prefixes"`
	// TLS configures TLS (and mTLS) to the service; plaintext without it.
	TLS *envoyext.TLSConfig `json:"tls" doc:"TLS (and mTLS) to the service; plaintext without it"`
}

// BodyConfig is `withRequestBody`, Envoy's with_request_body.
type BodyConfig struct {
	// MaxBytes is the most body bytes sent.
	MaxBytes *uint64 `json:"maxBytes" cfg:"required" minimum:"1" maximum:"4194304" doc:"the most body bytes sent"`
	// AllowPartial sends the first MaxBytes of a longer body; without it such a request is
	// answered 413.
	AllowPartial bool `json:"allowPartial" default:"false" doc:"sends the first maxBytes of a longer body; without it such a request is answered 413"`
	// PackAsBytes sends the body in raw_body (bytes) instead of body (UTF-8 text).
	PackAsBytes bool `json:"packAsBytes" default:"false" doc:"sends the body in raw_body (bytes) instead of body (UTF-8 text)"`
}

// CacheConfig is `decisionCache`.
type CacheConfig struct {
	// TTLMs is how long a decision is reused when the service names no TTL in its
	// dynamic_metadata (CacheTTLKey); 0 (the default) reuses only decisions the service
	// gives a TTL.
	TTLMs uint64 `json:"ttlMs" default:"0" doc:"how long a decision is reused when the service names no TTL; 0 reuses only decisions the service gives a TTL"`
	// MaxEntries bounds the decisions kept; default 10000.
	MaxEntries *uint64 `json:"maxEntries" default:"10000" minimum:"1" doc:"bounds the decisions kept"`
}

// Defaults and limits.
const (
	// DefaultTimeout is Envoy's default ext_authz timeout.
	DefaultTimeout = 200 * time.Millisecond
	// MaxTimeout caps timeoutMs.
	MaxTimeout = time.Hour
	// MaxBodyBytes caps withRequestBody.maxBytes: a gRPC server refuses messages over 4 MiB
	// by default.
	MaxBodyBytes = 4 << 20
)

// build decodes and provisions one extAuthz block found at path; nil when it has errors.
func build(ctx *core.SiteContext, node config.Node, path string) *Guard {
	var c Config
	before := len(ctx.Diag.Errors())
	config.Decode(node, path, &c, ctx.Diag)
	g := &Guard{
		target: c.GRPC, timeout: DefaultTimeout, failOpen: c.FailureModeAllow,
		failHeader: c.FailureModeAllowHeaderAdd, statusOnError: 403,
		peerCert: c.IncludePeerCertificate,
		log:      envoyext.Warner{Log: ctx.Logger, Prefix: "extAuthz: ", Target: c.GRPC},
	}
	if c.GRPC != "" {
		envoyext.ValidateTarget(ctx, c.GRPC, config.Join(path, "grpc"), "extAuthz")
	}
	if c.TimeoutMs != nil {
		if *c.TimeoutMs == 0 {
			ctx.Errorf(config.Join(path, "timeoutMs"), "must be ≥ 1")
		}
		g.timeout = time.Duration(min(*c.TimeoutMs, uint64(MaxTimeout/time.Millisecond))) * time.Millisecond
	}
	if c.StatusOnError != nil {
		if *c.StatusOnError < 400 || *c.StatusOnError > 599 {
			ctx.Errorf(config.Join(path, "statusOnError"), "must be an error status between 400 and 599, got %d", *c.StatusOnError)
		}
		g.statusOnError = int(min(*c.StatusOnError, 599))
	}
	if c.FailureModeAllowHeaderAdd && !c.FailureModeAllow {
		ctx.Warnf(config.Join(path, "failureModeAllowHeaderAdd"), "has no effect without failureModeAllow: true")
	}
	if b := c.WithRequestBody; b != nil && b.MaxBytes != nil {
		if *b.MaxBytes == 0 || *b.MaxBytes > MaxBodyBytes {
			ctx.Errorf(config.Join(path, "withRequestBody.maxBytes"), "must be between 1 and %d, got %d", MaxBodyBytes, *b.MaxBytes)
		}
		g.body = &bodyOptions{max: int64(min(*b.MaxBytes, MaxBodyBytes)), allowPartial: b.AllowPartial, packAsBytes: b.PackAsBytes}
	}
	g.settings = &checkSettings{ext: c.ContextExtensions}
	if len(c.Metadata) > 0 {
		g.settings.meta = buildMetadata(ctx, c.Metadata, config.Join(path, "metadata"))
	}
	if dc := c.DecisionCache; dc != nil {
		g.cache = &decisionCache{max: 10000, m: map[[32]byte]cached{}}
		if dc.TTLMs > 0 {
			g.cache.ttl = time.Duration(min(dc.TTLMs, uint64(maxCacheTTL/time.Millisecond))) * time.Millisecond
		}
		if dc.MaxEntries != nil {
			if *dc.MaxEntries == 0 {
				ctx.Errorf(config.Join(path, "decisionCache.maxEntries"), "must be ≥ 1")
			}
			g.cache.max = int(min(*dc.MaxEntries, 1<<24))
		}
	}
	g.skip = skippaths.New(c.SkipPaths, config.Join(path, "skipPaths"), ctx.Diag)
	if len(ctx.Diag.Errors()) > before {
		return nil
	}
	cc, err := envoyext.Conn(ctx, c.GRPC, c.TLS, config.Join(path, "tls"))
	if err != nil {
		return nil
	}
	g.client = authv3.NewAuthorizationClient(cc)
	g.denied, g.failed, g.failAllowed = metrics(ctx)
	return g
}

// buildMetadata turns `metadata` into the CheckRequest's metadata_context.
func buildMetadata(ctx *core.SiteContext, m map[string]map[string]any, path string) *corev3.Metadata {
	md := &corev3.Metadata{FilterMetadata: make(map[string]*structpb.Struct, len(m))}
	for ns, fields := range m {
		s, err := structpb.NewStruct(fields)
		if err != nil {
			ctx.Errorf(config.Join(path, ns), "%v", fmt.Errorf("cannot be sent as protobuf Struct: %w", err))
			continue
		}
		md.FilterMetadata[ns] = s
	}
	return md
}
