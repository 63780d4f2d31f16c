package compress

import (
	"io"
	"strconv"
	"sync"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"

	"github.com/conduitproxy/conduit/core"
)

// encoder is what every pooled compressor offers.
type encoder interface {
	io.WriteCloser
	Flush() error
	Reset(w io.Writer)
}

// zstdWindow bounds the zstd window: RFC 9659 lets HTTP decoders refuse windows above
// 8 MiB, and a smaller window keeps pooled encoders light.
const zstdWindow = 1 << 20

// newEncoder builds a compressor for coding index i at level (0–9; 0 = fastest).
func newEncoder(i, level int) encoder {
	switch codings[i] {
	case "br":
		return brotli.NewWriterLevel(io.Discard, level) // brotli qualities 0–11; 0 is fastest
	case "zstd":
		l := zstd.SpeedDefault
		switch {
		case level <= 2:
			l = zstd.SpeedFastest
		case level >= 7:
			l = zstd.SpeedBetterCompression
		}
		e, err := zstd.NewWriter(io.Discard, zstd.WithEncoderLevel(l), zstd.WithEncoderConcurrency(1),
			zstd.WithWindowSize(zstdWindow), zstd.WithLowerEncoderMem(true))
		if err != nil {
			panic("compress: zstd options: " + err.Error()) // constant options; cannot fail
		}
		return e
	case "gzip":
		w, err := gzip.NewWriterLevel(io.Discard, gzipLevel(level))
		if err != nil {
			panic("compress: gzip level: " + err.Error())
		}
		return w
	default: // deflate: the zlib format, as RFC 9110 §8.4.1.2 defines the coding
		w, err := zlib.NewWriterLevel(io.Discard, gzipLevel(level))
		if err != nil {
			panic("compress: zlib level: " + err.Error())
		}
		return w
	}
}

func gzipLevel(level int) int {
	if level < 1 {
		return 1
	}
	return level
}

// encoderPools returns the pools of one site's level, one per coding. They live in the
// cross-generation store so a reload keeps its warm encoders.
func encoderPools(shared core.Shared, level int) *[len(codings)]*sync.Pool {
	return core.SharedOf(shared, "compress/encoders/"+strconv.Itoa(level), func() *[len(codings)]*sync.Pool {
		var pools [len(codings)]*sync.Pool
		for i := range codings {
			pools[i] = &sync.Pool{New: func() any { return newEncoder(i, level) }}
		}
		return &pools
	})
}
