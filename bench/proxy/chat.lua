-- wrk script for bench/proxy.py: POST a chat completion; prints one "BENCH {json}" line at
-- the end. BENCH_STREAM=1: a streaming one ("stream": true) of the model BENCH_MODEL (default
-- bench-sse), wrk timing each request to the end of the whole SSE answer; otherwise a small
-- non-streaming one. BENCH_API=messages: the streaming one as an Anthropic Messages body (for
-- /v1/messages). BENCH_AUTH (optional): a bearer token to send.
wrk.method = "POST"
if os.getenv("BENCH_API") == "messages" then
  -- The same stream asked for through Anthropic's Messages API (llmlb translates it).
  local model = os.getenv("BENCH_MODEL") or "bench-sse"
  wrk.body = '{"model":"' .. model .. '","messages":[{"role":"user","content":"Count."}],' ..
    '"max_tokens":1000,"stream":true}'
elseif os.getenv("BENCH_STREAM") == "1" then
  local model = os.getenv("BENCH_MODEL") or "bench-sse"
  wrk.body = '{"model":"' .. model .. '","messages":[{"role":"user","content":"Count."}],' ..
    '"max_tokens":1000,"stream":true}'
else
  wrk.body = '{"model":"bench-model","messages":[{"role":"user","content":"Say hi."}],' ..
    '"max_tokens":8}'
end
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
