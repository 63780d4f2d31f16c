package upload_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/conduitproxy/conduit/core/config"
	"github.com/conduitproxy/conduit/core/server/servertest"
)

func TestConfigErrorsNameTheirPath(t *testing.T) {
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ name, src, path, msg string }{
		{"valid", "upload: {path: /upload, dir: /tmp/x, maxFileSizeBytes: 0, maxTotalSizeBytes: 10, maxFiles: 1, allowedMimeTypes: [image/png, 'text/*'], fieldName: f}", "", ""},
		{"path missing", "upload: {dir: /tmp/x}", "upload.path", "required"},
		{"dir missing", "upload: {path: /u}", "upload.dir", "required"},
		{"relative path", "upload: {path: upload, dir: /tmp/x}", "upload.path", "absolute URL path"},
		{"glob", "upload: {path: /u/**, dir: /tmp/x}", "upload.path", "absolute URL path"},
		{"dot segment", "upload: {path: /a/../b, dir: /tmp/x}", "upload.path", "absolute URL path"},
		{"dir is a file", "upload: {path: /u, dir: " + file + "}", "upload.dir", "not a directory"},
		{"bad type", "upload: {path: /u, dir: /tmp/x, allowedMimeTypes: [image/png, png]}", "upload.allowedMimeTypes[1]", "media type"},
		{"any type wildcard", "upload: {path: /u, dir: /tmp/x, allowedMimeTypes: ['*/*']}", "upload.allowedMimeTypes[0]", "media type"},
		{"maxFiles 0", "upload: {path: /u, dir: /tmp/x, maxFiles: 0}", "upload.maxFiles", "at least 1"},
		{"negative size", "upload: {path: /u, dir: /tmp/x, maxFileSizeBytes: -1}", "upload.maxFileSizeBytes", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, d, err := servertest.Build("port: 8080\n"+tc.src, config.FormatYAML)
			if err != nil {
				t.Fatal(err)
			}
			if tc.path == "" {
				if d.HasErrors() {
					t.Fatal(d.Err())
				}
				return
			}
			for _, e := range d.Errors() {
				if e.Path == tc.path && strings.Contains(e.Message, tc.msg) {
					return
				}
			}
			t.Fatalf("want an error at %s containing %q; got %v", tc.path, tc.msg, d.Err())
		})
	}
}
