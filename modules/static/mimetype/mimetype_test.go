package mimetype

import "testing"

func TestByName(t *testing.T) {
	tests := map[string]string{
		"index.html":          "text/html; charset=utf-8",
		"/a/b/APP.JS":         "text/javascript; charset=utf-8",
		"x.MJS":               "text/javascript; charset=utf-8",
		"style.css":           "text/css; charset=utf-8",
		"logo.svg":            "image/svg+xml",
		"font.woff2":          "font/woff2",
		"app.wasm":            "application/wasm",
		"LICENSE":             Default,
		"archive.unknownext1": Default,
		"a.verylongextension": Default,
		".env":                Default,
	}
	for in, want := range tests {
		if got := ByName(in); got != want {
			t.Errorf("ByName(%q) = %q; want %q", in, got, want)
		}
	}
}

func TestByNameDoesNotAllocateForKnownTypes(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { _ = ByName("/assets/app.JS") }); n != 0 {
		t.Fatalf("ByName allocates %v times", n)
	}
}
