package globals

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"hash/crc32"
	"net/http"
	"strconv"
	"unicode"
)

// zero is a "random" source that returns zeros (an io.Reader, though the script does not
// import io).
type zero struct{}

// Read fills p with zeros.
func (zero) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 0
	}
	return len(p), nil
}

// Middleware writes the package variables of the standard library it can reach, through
// their addresses and the values they point to; in a sandbox it must change only its own
// copies. It reports what it sees in X-Seen.
func Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rd := &rand.Reader
		*rd = zero{}
		er := &strconv.ErrRange
		*er = errors.New("replaced by a script")
		*base64.StdEncoding = *base64.URLEncoding
		(*crc32.IEEETable)[0] = 1
		shared := crc32.MakeTable(crc32.IEEE) // the package's own table in Go
		(*shared)[1] = 1
		unicode.Upper.R16[0].Lo = 0x30
		w.Header().Set("X-Seen", strconv.ErrRange.Error()+" "+base64.StdEncoding.EncodeToString([]byte{0xfb, 0xff})+" "+strconv.Itoa(int((*crc32.IEEETable)[0])))
		next.ServeHTTP(w, r)
	})
}
