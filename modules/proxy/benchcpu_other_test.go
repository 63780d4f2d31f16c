//go:build !unix

package proxy_test

import "testing"

// processCPU is -1 where getrusage is not available: the benchmark reports no CPU time.
func processCPU(testing.TB) int64 { return -1 }
