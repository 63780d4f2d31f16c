package otlp

import (
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/conduitproxy/conduit/core/config"
)

// Protocol is the OTLP transport.
type Protocol string

// The OTLP transports.
const (
	// ProtocolGRPC is OTLP over gRPC (the collector's port 4317).
	ProtocolGRPC Protocol = "grpc"
	// ProtocolHTTP is OTLP/HTTP with protobuf bodies (port 4318, path /v1/traces).
	ProtocolHTTP Protocol = "http/protobuf"
)

// Config is `global.otlp`.
type Config struct {
	// Endpoint is the collector: "http://collector:4317", "https://…", "collector:4317", or an
	// OTLP/HTTP URL such as "http://collector:4318/v1/traces".
	Endpoint string `json:"endpoint" cfg:"required" doc:"the collector: http(s)://host:port[/path] or host:port"`
	// ServiceName is the resource's service.name (default "conduit").
	ServiceName *string `json:"serviceName"`
	// SampleRate is the head-sampling ratio for traces that start here, 0–1 (default 1).
	SampleRate *float64 `json:"sampleRate" minimum:"0" maximum:"1" default:"1"`
	// TimeoutMs bounds one export (default 5000).
	TimeoutMs *uint64 `json:"timeoutMs" minimum:"1" default:"5000"`
	// Protocol forces "grpc" or "http/protobuf"; without it the endpoint decides (see
	// resolve).
	Protocol *string `json:"protocol" enum:"grpc|http/protobuf|http" enumcase:"fold"`

	present bool // endpoint was given (possibly empty)
}

// settings is the validated configuration.
type settings struct {
	protocol    Protocol
	endpointURL string // scheme://host:port[/path]
	insecure    bool
	serviceName string
	sampleRate  float64
	timeoutMs   uint64
}

// resolve validates c and picks the protocol: the `protocol` key when set; otherwise
// OTLP/HTTP when the endpoint's port is 4318 or it has a path (as OTLP/HTTP URLs do), and
// gRPC, the default docs/observability.md documents, for anything else.
func (c *Config) resolve(path string, d *config.Diagnostics) settings {
	s := settings{serviceName: "conduit", sampleRate: 1, timeoutMs: 5000, protocol: ProtocolGRPC}
	if c.ServiceName != nil {
		if strings.TrimSpace(*c.ServiceName) == "" {
			d.Errorf(config.Join(path, "serviceName"), "must not be empty")
		}
		s.serviceName = *c.ServiceName
	}
	if c.SampleRate != nil {
		if !(*c.SampleRate >= 0 && *c.SampleRate <= 1) {
			d.Errorf(config.Join(path, "sampleRate"), "must be between 0 and 1")
		}
		s.sampleRate = *c.SampleRate
	}
	if c.TimeoutMs != nil {
		if *c.TimeoutMs == 0 {
			d.Errorf(config.Join(path, "timeoutMs"), "must be ≥ 1")
		}
		s.timeoutMs = *c.TimeoutMs
	}
	if c.Endpoint == "" {
		// An absent key is reported by the decoder (cfg:"required").
		if c.present {
			d.Errorf(config.Join(path, "endpoint"), "must not be empty")
		}
		return s
	}
	u, err := parseEndpoint(c.Endpoint)
	if err != nil {
		d.Errorf(config.Join(path, "endpoint"), "%v", err)
		return s
	}
	s.insecure = u.Scheme == "http"
	explicit := c.Protocol != nil
	if explicit {
		switch strings.ToLower(*c.Protocol) {
		case "grpc":
			s.protocol = ProtocolGRPC
		case "http/protobuf", "http":
			s.protocol = ProtocolHTTP
		default:
			d.Errorf(config.Join(path, "protocol"), "must be \"grpc\" or \"http/protobuf\", got %q", *c.Protocol)
		}
	} else if u.Port() == "4318" || (u.Path != "" && u.Path != "/") {
		s.protocol = ProtocolHTTP
	}
	if s.protocol == ProtocolHTTP && (u.Path == "" || u.Path == "/") {
		u.Path = "/v1/traces"
	}
	if s.protocol == ProtocolGRPC && u.Path != "" && u.Path != "/" {
		d.Errorf(config.Join(path, "endpoint"), "a gRPC endpoint has no path (got %q); for OTLP/HTTP set protocol: http/protobuf", u.Path)
	}
	s.endpointURL = u.String()
	return s
}

// parseEndpoint accepts a URL with an http or https scheme, or a bare host:port (plain
// text, as OTLP endpoints are usually written for a local collector).
func parseEndpoint(raw string) (*url.URL, error) {
	if !strings.Contains(raw, "://") {
		host, port, err := net.SplitHostPort(raw)
		if err != nil || host == "" || port == "" {
			return nil, fmt.Errorf("must be a URL such as http://collector:4317 or host:port, got %q", raw)
		}
		return &url.URL{Scheme: "http", Host: raw}, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("invalid URL %q: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("scheme must be http or https, got %q", u.Scheme)
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, fmt.Errorf("URL %q has no host", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("URL %q must not have a query, fragment or user info", raw)
	}
	if u.Port() == "" {
		if u.Path != "" && u.Path != "/" {
			u.Host = net.JoinHostPort(u.Hostname(), "4318")
		} else {
			u.Host = net.JoinHostPort(u.Hostname(), "4317")
		}
	}
	return u, nil
}
