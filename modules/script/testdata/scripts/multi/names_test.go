package multi

// This file is left out: a script directory's _test.go files are not loaded.
var _ = undefinedInTests
