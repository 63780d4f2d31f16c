-- Printed by wrk after the run; conduit-bench parses the "CB " lines.
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("CB requests %d\n", summary.requests))
  io.write(string.format("CB duration_us %d\n", summary.duration))
  io.write(string.format("CB errors %d\n", e.connect + e.read + e.write + e.status + e.timeout))
  io.write(string.format("CB p50_us %d\n", latency:percentile(50)))
  io.write(string.format("CB p99_us %d\n", latency:percentile(99)))
  io.write(string.format("CB p999_us %d\n", latency:percentile(99.9)))
end
