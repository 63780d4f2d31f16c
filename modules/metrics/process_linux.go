package metrics

import (
	"bytes"
	"os"
	"strconv"
	"syscall"
)

// userHZ is the kernel's USER_HZ, 100 on every Linux platform Go supports (procfs, which the
// Prometheus client uses, assumes the same).
const userHZ = 100

// appendProcess writes the standard process_* metrics from /proc/self.
func appendProcess(b []byte) []byte {
	stat, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return b
	}
	// Fields after the command name, which is in parentheses and may contain spaces.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return b
	}
	f := bytes.Fields(stat[i+1:])
	field := func(n int) float64 { // n is the 1-based field number of proc(5)
		if n-3 >= len(f) {
			return 0
		}
		v, _ := strconv.ParseFloat(string(f[n-3]), 64)
		return v
	}
	b = appendHeader(b, "process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", "counter")
	b = appendSample(b, "process_cpu_seconds_total", "", nil, nil, "", (field(14)+field(15))/userHZ)
	b = appendHeader(b, "process_resident_memory_bytes", "Resident memory size in bytes.", "gauge")
	b = appendSample(b, "process_resident_memory_bytes", "", nil, nil, "", field(24)*float64(os.Getpagesize()))
	b = appendHeader(b, "process_virtual_memory_bytes", "Virtual memory size in bytes.", "gauge")
	b = appendSample(b, "process_virtual_memory_bytes", "", nil, nil, "", field(23))
	if btime := bootTime(); btime > 0 {
		b = appendHeader(b, "process_start_time_seconds", "Start time of the process since unix epoch in seconds.", "gauge")
		b = appendSample(b, "process_start_time_seconds", "", nil, nil, "", btime+field(22)/userHZ)
	}
	if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
		b = appendHeader(b, "process_open_fds", "Number of open file descriptors.", "gauge")
		b = appendSample(b, "process_open_fds", "", nil, nil, "", float64(len(fds)))
	}
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil {
		b = appendHeader(b, "process_max_fds", "Maximum number of open file descriptors.", "gauge")
		b = appendSample(b, "process_max_fds", "", nil, nil, "", float64(lim.Cur))
	}
	return b
}

func bootTime() float64 {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	for line := range bytes.SplitSeq(data, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("btime ")); ok {
			f, _ := strconv.ParseFloat(string(bytes.TrimSpace(v)), 64)
			return f
		}
	}
	return 0
}
