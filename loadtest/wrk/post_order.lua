-- wrk script: POST a unique seed-shaped order to hookvault's ingest path.
-- wrk -t2 -c32 -d10s --latency -s loadtest/wrk/post_order.lua http://127.0.0.1:8001
local counter = 0
local thread_id = 0
local threads = {}

function setup(thread)
  thread:set("id", thread_id)
  thread_id = thread_id + 1
  table.insert(threads, thread)
end

function init(args)
  wrk.method = "POST"
  wrk.path = "/api/v2/webhooks/orders"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  counter = counter + 1
  local n = id * 100000000 + counter
  local body = string.format(
    '{"embeds":[{"author":{"name":"Test Order %d"},"description":"Product\\nTest Product %d\\nPrice\\n$99.99\\nOrder Number\\nWRK-%d\\nEmail\\ntest%d@example.com"}]}',
    n, n, n, n)
  return wrk.format(nil, nil, nil, body)
end
