package ratelimit

import (
	"fmt"
	"strings"

	"github.com/conduitproxy/conduit/core/router"
)

// skipList is a compiled skipPaths list: exact paths and "/prefix/**" prefixes ("/prefix/**"
// also matches "/prefix" and "/prefix/"). No other wildcards, as in the original.
type skipList struct {
	exact    []string
	prefixes []string
}

func compileSkip(paths []string) (skipList, error) {
	var s skipList
	for _, p := range paths {
		if err := checkSkipPath(p); err != nil {
			return skipList{}, err
		}
		if pre, ok := strings.CutSuffix(p, "/**"); ok {
			if pre == "" {
				pre = "/"
			}
			s.prefixes = append(s.prefixes, pre)
			continue
		}
		s.exact = append(s.exact, p)
	}
	return s, nil
}

// checkSkipPath validates one skipPaths entry.
func checkSkipPath(p string) error {
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("%q must start with \"/\"", p)
	}
	body := strings.TrimSuffix(p, "/**")
	if strings.Contains(body, "*") {
		return fmt.Errorf("%q: only a trailing \"/**\" wildcard is supported", p)
	}
	return nil
}

func (s *skipList) match(path string) bool {
	for _, e := range s.exact {
		if path == e {
			return true
		}
	}
	for _, p := range s.prefixes {
		if router.HasPathPrefix(path, p) {
			return true
		}
	}
	return false
}
