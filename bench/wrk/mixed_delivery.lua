-- Signed GitHub deliveries, each new (BENCH_MIXED unset), or mixed traffic (BENCH_MIXED=1):
-- in every hundred requests,
--   10 redeliver an earlier delivery (answered 200 "duplicate"),
--    1 carries a bad signature (answered 401), and
--    1 carries a body over the server's limit (answered 413);
-- the other 88 are new deliveries (answered 202). Driven by bench/suites/compare.py:
--   BENCH_BODY_FILE, BENCH_HEADERS_FILE  the signed delivery and its headers
--   BENCH_BIG_BODY_FILE                  the oversized body
--   BENCH_RUN_TAG                        8 hex digits, unique per run
--   BENCH_OUT                            where done() writes its JSON summary
-- Rejected requests use delivery ids of their own ("-9000-"), so the stream can be searched
-- for them. A redelivery repeats the id sent 50 requests earlier by the same thread, which
-- has been answered by then (a thread holds at most a few connections).

local threads = {}
local KINDS = { "new", "duplicate", "bad_signature", "oversized" }
local REDELIVER_BEHIND = 50

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
   mixed = os.getenv("BENCH_MIXED") == "1"
   big_body = mixed and read_file(os.getenv("BENCH_BIG_BODY_FILE")) or ""
   headers = {}
   for line in read_file(os.getenv("BENCH_HEADERS_FILE")):gmatch("[^\n]+") do
      local name, value = line:match("^([^:]+):%s*(.*)$")
      headers[name] = value
   end
   good_signature = headers["X-Hub-Signature-256"]
   local tag = os.getenv("BENCH_RUN_TAG")
   prefix = string.format("%s-%04x-4000-8000-", tag, thread_number)
   rejected_prefix = string.format("%s-%04x-4000-9000-", tag, thread_number)
   sent = 0
   new_count = 0
   kinds = { new = 0, duplicate = 0, bad_signature = 0, oversized = 0 }
   statuses = {}
   acked = {}
   duplicates = {}
end

local function kind_of(n)
   if not mixed then return "new" end
   local slot = n % 100
   if slot == 7 then return "bad_signature" end
   if slot == 53 then return "oversized" end
   if slot % 10 == 3 and new_count > REDELIVER_BEHIND then return "duplicate" end
   return "new"
end

function request()
   sent = sent + 1
   local kind = kind_of(sent)
   kinds[kind] = kinds[kind] + 1
   headers["X-Hub-Signature-256"] = good_signature
   local payload = body
   if kind == "new" then
      new_count = new_count + 1
      headers["X-GitHub-Delivery"] = prefix .. string.format("%012x", new_count)
   elseif kind == "duplicate" then
      headers["X-GitHub-Delivery"] =
         prefix .. string.format("%012x", new_count - REDELIVER_BEHIND)
   else
      headers["X-GitHub-Delivery"] = rejected_prefix .. string.format("%012x", sent)
      if kind == "bad_signature" then
         headers["X-Hub-Signature-256"] = "sha256=" .. string.rep("0", 64)
      else
         payload = big_body
      end
   end
   return wrk.format("POST", nil, headers, payload)
end

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
   if status == 202 then
      acked[#acked + 1] = body:match('"event_id":%s*"([^"]*)"') or ""
   elseif status == 200 then
      duplicates[#duplicates + 1] = body:match('"event_id":%s*"([^"]*)"') or ""
   end
end

local function quoted(list)
   local out = {}
   for _, id in ipairs(list) do out[#out + 1] = '"' .. id .. '"' end
   return table.concat(out, ", ")
end

function done(summary, latency, requests)
   local total_sent, by_status, by_kind, ids, dups = 0, {}, {}, {}, {}
   for _, thread in ipairs(threads) do
      total_sent = total_sent + thread:get("sent")
      for status, count in pairs(thread:get("statuses")) do
         by_status[status] = (by_status[status] or 0) + count
      end
      local thread_kinds = thread:get("kinds")
      for _, kind in ipairs(KINDS) do
         by_kind[kind] = (by_kind[kind] or 0) + thread_kinds[kind]
      end
      for _, id in ipairs(thread:get("acked")) do ids[#ids + 1] = id end
      for _, id in ipairs(thread:get("duplicates")) do dups[#dups + 1] = id end
   end
   local statuses_json, kinds_json = {}, {}
   for status, count in pairs(by_status) do
      statuses_json[#statuses_json + 1] = string.format('"%d": %d', status, count)
   end
   for _, kind in ipairs(KINDS) do
      kinds_json[#kinds_json + 1] = string.format('"%s": %d', kind, by_kind[kind])
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
      latency:percentile(99), latency:percentile(99.9), latency.mean, latency.stdev,
      latency.max))
   out:write('"statuses": {' .. table.concat(statuses_json, ", ") .. '}, ')
   out:write('"kinds": {' .. table.concat(kinds_json, ", ") .. '}, ')
   out:write('"acked": [' .. quoted(ids) .. '], ')
   out:write('"duplicates": [' .. quoted(dups) .. ']}\n')
   out:close()
end
