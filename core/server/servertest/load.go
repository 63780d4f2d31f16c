package servertest

import (
	"sync"
	"sync/atomic"
)

// LoadResult is what a Load run counted.
type LoadResult struct {
	// Sent and Failed count the requests sent and those send reported as failed.
	Sent, Failed int64
	// First is the first failure ("" when none), so a test can say what went wrong.
	First string
}

// Load runs send in a loop on workers goroutines until the returned stop is called; each call
// is one request and returns an error for a failed one. stop waits for the workers and
// returns the counts. Tests use it to prove that no request fails while a config changes
// under load.
func Load(workers int, send func() error) (stop func() LoadResult) {
	var sent, failed atomic.Int64
	var first atomic.Value
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				sent.Add(1)
				if err := send(); err != nil {
					failed.Add(1)
					first.CompareAndSwap(nil, err.Error())
				}
			}
		}()
	}
	return func() LoadResult {
		close(done)
		wg.Wait()
		r := LoadResult{Sent: sent.Load(), Failed: failed.Load()}
		if f, ok := first.Load().(string); ok {
			r.First = f
		}
		return r
	}
}
