-- wrk script for bench/proxy.py: POST a streaming chat completion ("stream": true); wrk times
-- each request to the end of the whole SSE answer. BENCH_MODEL: the model (default
-- bench-sse); BENCH_AUTH (optional): a bearer token. Prints one "BENCH {json}" line.
local model = os.getenv("BENCH_MODEL") or "bench-sse"
wrk.method = "POST"
wrk.body = '{"model":"' .. model .. '","messages":[{"role":"user","content":"Count."}],' ..
  '"max_tokens":1000,"stream":true}'
wrk.headers["Content-Type"] = "application/json"
local auth = os.getenv("BENCH_AUTH")
if auth and auth ~= "" then wrk.headers["Authorization"] = "Bearer " .. auth end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"bytes":%d,"p50_us":%d,"p99_us":%d,' ..
    '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}\n',
    summary.requests, summary.duration, summary.bytes, latency:percentile(50),
    latency:percentile(99), e.connect, e.read, e.write, e.status, e.timeout))
end
