package http3

import (
	"time"

	"github.com/conduitproxy/conduit/core/config"
)

// Defaults of the http3 key.
const (
	// DefaultMaxStreams is how many request streams a client may have open at once on one
	// connection (quic-go's default, and HTTP/2's usual 100).
	DefaultMaxStreams = 100
	// DefaultIdleTimeout closes a connection without a request in progress, or whose peer
	// sent nothing, for this long (quic-go's default idle timeout).
	DefaultIdleTimeout = 30 * time.Second
	// maxStreamsLimit and maxIdleSecs bound the settings.
	maxStreamsLimit = 10000
	maxIdleSecs     = 3600
)

// want names the shapes of the key in messages.
const want = "true, false or {enabled, maxStreams, idleTimeoutSecs, advertise}"

// Config is the `http3` key of a site, or `global.http3`: a boolean or an object.
type Config struct {
	// Enabled serves HTTP/3 on the site's port over UDP.
	Enabled bool
	// MaxStreams is the number of concurrent request streams per connection.
	MaxStreams int64
	// IdleTimeout closes a connection without a request in progress, or whose peer sent
	// nothing, for this long.
	IdleTimeout time.Duration
	// Advertise adds Alt-Svc to the site's HTTP/1.1 and HTTP/2 answers.
	Advertise bool
}

// defaults returns the settings of `http3: true`.
func defaults() Config {
	return Config{Enabled: true, MaxStreams: DefaultMaxStreams, IdleTimeout: DefaultIdleTimeout, Advertise: true}
}

// options is the object shape of the key.
type options struct {
	Enabled         *bool   `json:"enabled" default:"true" doc:"serves HTTP/3 on the site's port over UDP"`
	MaxStreams      *uint32 `json:"maxStreams" default:"100" minimum:"1" maximum:"10000" doc:"concurrent request streams per connection"`
	IdleTimeoutSecs *uint32 `json:"idleTimeoutSecs" default:"30" minimum:"1" maximum:"3600" doc:"closes a connection without a request in progress, or whose peer sent nothing, for this long"`
	Advertise       *bool   `json:"advertise" default:"true" doc:"adds Alt-Svc to the site's HTTP/1.1 and HTTP/2 answers"`
}

// ConfigSchema implements config.SchemaProvider: a boolean or the options object.
func (Config) ConfigSchema() map[string]any {
	return config.Toggle(config.Schema(options{}))
}

// UnmarshalConfig implements config.Unmarshaler.
func (c *Config) UnmarshalConfig(n config.Node, path string, d *config.Diagnostics) {
	*c = defaults()
	var o options
	if !config.DecodeToggle(n, path, d, want, &c.Enabled, &o) {
		return
	}
	if o.Enabled != nil {
		c.Enabled = *o.Enabled
	}
	if o.MaxStreams != nil {
		if *o.MaxStreams < 1 || *o.MaxStreams > maxStreamsLimit {
			d.Errorf(config.Join(path, "maxStreams"), "must be between 1 and %d", maxStreamsLimit)
		}
		c.MaxStreams = int64(min(max(*o.MaxStreams, 1), maxStreamsLimit))
	}
	if o.IdleTimeoutSecs != nil {
		if *o.IdleTimeoutSecs < 1 || *o.IdleTimeoutSecs > maxIdleSecs {
			d.Errorf(config.Join(path, "idleTimeoutSecs"), "must be between 1 and %d", maxIdleSecs)
		}
		c.IdleTimeout = time.Duration(min(max(*o.IdleTimeoutSecs, 1), maxIdleSecs)) * time.Second
	}
	if o.Advertise != nil {
		c.Advertise = *o.Advertise
	}
}
