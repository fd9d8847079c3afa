-- wrk script: POST a unique order (the form of tests/fixtures/webhooks/description_pairs.json)
-- to hookvault's ingest path.
--   wrk -t2 -c32 -d10s --latency -s loadtest/wrk/post_order.lua http://127.0.0.1:8001
-- Optional arguments after `--`: the order-number label (default "Order Number") and how many
-- answers each wrk thread waits for before it stops (default: until -d runs out):
--   wrk -t2 -c32 -d120s -s loadtest/wrk/post_order.lua URL -- Bestellnummer 50000
-- Order numbers carry the start time, so repeated runs against one database stay unique.
local run = os.time()
local counter, answered, limit, label = 0, 0, nil, "Order Number"
local thread_id = 0

function setup(thread)
  thread:set("id", thread_id)
  thread_id = thread_id + 1
end

function init(args)
  label = args[1] or label
  limit = tonumber(args[2])
  wrk.method = "POST"
  wrk.path = "/api/v2/webhooks/orders"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  counter = counter + 1
  local n = id * 100000000 + counter
  local body = string.format(
    '{"embeds":[{"author":{"name":"Test Order %d"},"description":"Product\\nTest Product %d\\nPrice\\n$99.99\\n%s\\nWRK-%d-%d\\nEmail\\ntest%d@example.com"}]}',
    n, n, label, run, n, n)
  return wrk.format(nil, nil, nil, body)
end

function response(status)
  answered = answered + 1
  if limit and answered >= limit then wrk.thread:stop() end
end
