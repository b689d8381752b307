-- Post one signed GitHub delivery over and over, each request with its own X-GitHub-Delivery,
-- and count what came back. The signature covers only the body, so one body and one signature
-- serve every request. Driven by bench/load.py through these environment variables:
--   BENCH_BODY_FILE     the raw body
--   BENCH_HEADERS_FILE  "Name: value" lines (the signature among them)
--   BENCH_RUN_TAG       8 hex digits, unique per run, that start every delivery id
--   BENCH_OUT           where done() writes its JSON summary

local threads = {}

function setup(thread)
   table.insert(threads, thread)
   thread:set("thread_number", #threads)
end

local function read_file(path)
   local file = assert(io.open(path, "rb"))
   local text = file:read("*a")
   file:close()
   return text
end

function init(args)
   body = read_file(os.getenv("BENCH_BODY_FILE"))
   headers = {}
   for line in read_file(os.getenv("BENCH_HEADERS_FILE")):gmatch("[^\n]+") do
      local name, value = line:match("^([^:]+):%s*(.*)$")
      headers[name] = value
   end
   -- GUID-shaped, like GitHub's: run tag, thread number, then a counter of this thread.
   prefix = string.format("%s-%04x-4000-8000-", os.getenv("BENCH_RUN_TAG"), thread_number)
   sent = 0
   statuses = {}
   acked = {}
end

function request()
   sent = sent + 1
   headers["X-GitHub-Delivery"] = prefix .. string.format("%012x", sent)
   return wrk.format("POST", nil, headers, body)
end

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
   if status >= 200 and status < 300 then
      acked[#acked + 1] = body:match('"event_id":%s*"([^"]*)"') or ""
   end
end

function done(summary, latency, requests)
   local total_sent, by_status, ids = 0, {}, {}
   for _, thread in ipairs(threads) do
      total_sent = total_sent + thread:get("sent")
      for status, count in pairs(thread:get("statuses")) do
         by_status[status] = (by_status[status] or 0) + count
      end
      for _, id in ipairs(thread:get("acked")) do
         ids[#ids + 1] = '"' .. id .. '"'
      end
   end
   local statuses_json = {}
   for status, count in pairs(by_status) do
      statuses_json[#statuses_json + 1] = string.format('"%d": %d', status, count)
   end
   local errors = summary.errors
   local out = assert(io.open(os.getenv("BENCH_OUT"), "w"))
   out:write(string.format(
      '{"duration_us": %.0f, "responses": %.0f, "bytes": %.0f, "sent": %.0f, ',
      summary.duration, summary.requests, summary.bytes, total_sent))
   out:write(string.format(
      '"errors": {"connect": %.0f, "read": %.0f, "write": %.0f, "status": %.0f, "timeout": %.0f}, ',
      errors.connect, errors.read, errors.write, errors.status, errors.timeout))
   out:write(string.format(
      '"latency_us": {"p50": %.1f, "p90": %.1f, "p99": %.1f, "p999": %.1f, "mean": %.1f, '
         .. '"stdev": %.1f, "max": %.1f}, ',
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency:percentile(99.9), latency.mean, latency.stdev, latency.max))
   out:write('"statuses": {' .. table.concat(statuses_json, ", ") .. '}, ')
   out:write('"acked": [' .. table.concat(ids, ", ") .. ']}\n')
   out:close()
end
