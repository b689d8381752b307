-- GET a list of paths in turn with a bot token, and count what came back. Each thread starts
-- at its own place in the list, so connections do not ask for the same page at once. Driven by
-- bench/suites/api.py through these environment variables:
--   BENCH_PATHS_FILE  one path per line (the stream's page cursors, or a single path)
--   BENCH_TOKEN_FILE  the bearer token
--   BENCH_OUT         where done() writes its JSON summary

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
   paths = {}
   for line in read_file(os.getenv("BENCH_PATHS_FILE")):gmatch("[^\n]+") do
      paths[#paths + 1] = line
   end
   local token = read_file(os.getenv("BENCH_TOKEN_FILE")):gsub("%s+$", "")
   headers = { ["Authorization"] = "Bearer " .. token, ["Accept"] = "application/json" }
   index = ((thread_number - 1) * 7919) % #paths
   sent = 0
   statuses = {}
end

function request()
   index = index % #paths + 1
   sent = sent + 1
   return wrk.format("GET", paths[index], headers)
end

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
   local total_sent, by_status = 0, {}
   for _, thread in ipairs(threads) do
      total_sent = total_sent + thread:get("sent")
      for status, count in pairs(thread:get("statuses")) do
         by_status[status] = (by_status[status] or 0) + count
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
      '"latency_us": {"p50": %.1f, "p90": %.1f, "p95": %.1f, "p99": %.1f, "p999": %.1f, '
         .. '"mean": %.1f, "stdev": %.1f, "max": %.1f}, ',
      latency:percentile(50), latency:percentile(90), latency:percentile(95),
      latency:percentile(99), latency:percentile(99.9), latency.mean, latency.stdev, latency.max))
   out:write('"statuses": {' .. table.concat(statuses_json, ", ") .. '}}\n')
   out:close()
end
