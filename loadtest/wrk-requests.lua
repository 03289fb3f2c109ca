-- Cycles through a gen-requests file; prints p50/p99/p99.9 in microseconds and
-- socket errors (404s for the unknown codes are expected, so not counted).
-- Arguments: the file, the User-Agent, and `close` to send
-- `Connection: close` (a new connection, and TLS handshake, per request).
local reqs = {}
local i = 0
function init(args)
  for line in io.lines(args[1]) do
    local host, target = line:match("([^\t]+)\t([^\t]+)")
    local headers = { Host = host, ["User-Agent"] = args[2] }
    if args[3] == "close" then headers["Connection"] = "close" end
    reqs[#reqs + 1] = wrk.format("GET", target, headers)
  end
  i = math.random(#reqs)
end
function request()
  i = i % #reqs + 1
  return reqs[i]
end
function done(summary, latency, requests)
  io.write(string.format("WRK %d %.1f %d %d %d %d\n", summary.requests, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9),
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
