// Package stamp is an example Traefik middleware plugin (the CreateConfig/New shape Traefik
// loads with yaegi) that Conduit runs unchanged as a `middleware[]` entry of type traefik.
// It sets request headers for the upstream, refuses listed paths, and adds response headers
// to the requests whose path starts with a rule's prefix.
package stamp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Rule adds a response header to requests under a path prefix.
type Rule struct {
	Prefix string `json:"prefix,omitempty"`
	Header string `json:"header,omitempty"`
	Value  string `json:"value,omitempty"`
}

// Deny refuses requests for some paths.
type Deny struct {
	Paths  []string `json:"paths,omitempty"`
	Status int      `json:"status,omitempty"`
}

// Config is the plugin configuration.
type Config struct {
	RequestHeaders map[string]string `json:"requestHeaders,omitempty"`
	Deny           Deny              `json:"deny,omitempty"`
	Rules          []Rule            `json:"rules,omitempty"`
}

// CreateConfig returns the default configuration.
func CreateConfig() *Config {
	return &Config{RequestHeaders: map[string]string{}, Deny: Deny{Status: http.StatusForbidden}}
}

// Stamp is the plugin's handler.
type Stamp struct {
	next   http.Handler
	name   string
	config *Config
}

// New builds the handler.
func New(ctx context.Context, next http.Handler, config *Config, name string) (http.Handler, error) {
	if config.Deny.Status < 100 || config.Deny.Status > 599 {
		return nil, fmt.Errorf("deny.status %d is not an HTTP status", config.Deny.Status)
	}
	for i, r := range config.Rules {
		if r.Header == "" {
			return nil, errors.New("rules[" + fmt.Sprint(i) + "].header is required")
		}
	}
	return &Stamp{next: next, name: name, config: config}, nil
}

// ServeHTTP refuses a path listed in deny.paths with deny.status; otherwise it sets the
// configured request headers, adds the response header of every rule whose prefix the path
// starts with, and calls the next handler.
func (s *Stamp) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	for _, p := range s.config.Deny.Paths {
		if req.URL.Path == p {
			http.Error(rw, "refused by "+s.name, s.config.Deny.Status)
			return
		}
	}
	for k, v := range s.config.RequestHeaders {
		req.Header.Set(k, v)
	}
	for _, r := range s.config.Rules {
		if strings.HasPrefix(req.URL.Path, r.Prefix) {
			rw.Header().Add(r.Header, r.Value)
		}
	}
	s.next.ServeHTTP(rw, req)
}
