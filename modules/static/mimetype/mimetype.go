// Package mimetype maps file names to Content-Type values by extension. It is shared by the
// static and fallback modules and depends on nothing host-specific for the common web types,
// so responses do not change with the machine's /etc/mime.types.
package mimetype

import (
	"mime"
	"path"
)

// Default is the type of a file whose extension is unknown.
const Default = "application/octet-stream"

// ByName returns the Content-Type for a file name (or path) from its extension. Common web
// types come from a fixed table; other extensions fall back to the standard library's table;
// anything else is Default.
func ByName(name string) string {
	ext := path.Ext(name)
	if ext == "" {
		return Default
	}
	if t := builtin(ext); t != "" {
		return t
	}
	if t := mime.TypeByExtension(ext); t != "" {
		return t
	}
	return Default
}

// builtin looks ext (with its dot) up in the fixed table, ignoring ASCII case, without
// allocating.
func builtin(ext string) string {
	var buf [12]byte
	if len(ext) > len(buf) {
		return ""
	}
	for i := 0; i < len(ext); i++ {
		c := ext[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	switch string(buf[:len(ext)]) {
	case ".html", ".htm":
		return "text/html; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".js", ".mjs", ".cjs":
		return "text/javascript; charset=utf-8"
	case ".json", ".map":
		return "application/json"
	case ".webmanifest":
		return "application/manifest+json"
	case ".txt":
		return "text/plain; charset=utf-8"
	case ".md":
		return "text/markdown; charset=utf-8"
	case ".csv":
		return "text/csv; charset=utf-8"
	case ".xml":
		return "application/xml"
	case ".svg":
		return "image/svg+xml"
	case ".png":
		return "image/png"
	case ".jpg", ".jpeg":
		return "image/jpeg"
	case ".gif":
		return "image/gif"
	case ".webp":
		return "image/webp"
	case ".avif":
		return "image/avif"
	case ".ico":
		return "image/x-icon"
	case ".wasm":
		return "application/wasm"
	case ".pdf":
		return "application/pdf"
	case ".woff":
		return "font/woff"
	case ".woff2":
		return "font/woff2"
	case ".ttf":
		return "font/ttf"
	case ".otf":
		return "font/otf"
	case ".mp4":
		return "video/mp4"
	case ".webm":
		return "video/webm"
	case ".mp3":
		return "audio/mpeg"
	case ".ogg":
		return "audio/ogg"
	case ".wav":
		return "audio/wav"
	case ".zip":
		return "application/zip"
	case ".gz":
		return "application/gzip"
	case ".br":
		return "application/x-brotli"
	}
	return ""
}
