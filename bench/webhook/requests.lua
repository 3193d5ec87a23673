-- wrk script for the webhook benchmark: cycle through pre-signed Twilio requests.
--
-- Usage: wrk -t T -c C -d D -s requests.lua http://127.0.0.1:PORT -- FILE T
-- FILE has one request per line: "<X-Twilio-Signature>\t<urlencoded form body>".
-- Thread k of T takes lines k, k+T, k+2T, ... so no two threads send the same message, and the
-- file's order (round by round over all families) keeps one family's messages far apart.
-- At the end one line "BENCH_RESULT {json}" gives exact counts and latency percentiles.

local threads = {}
local next_id = 0

function setup(thread)
   thread:set("id", next_id)
   next_id = next_id + 1
   table.insert(threads, thread)
end

-- per-thread globals (read back with thread:get in done)
reqs = {}
n = 0
i = 0
sent = 0
non200 = 0
wrapped = 0
verified = true

function init(args)
   -- wrk calls request() once on thread 0 before the run, only to check the script: that call
   -- must neither be counted nor use up a message.
   verified = (id ~= 0)
   local path = args[1]
   local nthreads = tonumber(args[2])
   local k = 0
   for line in io.lines(path) do
      if k % nthreads == id then
         local tab = line:find("\t", 1, true)
         local headers = {
            ["Content-Type"] = "application/x-www-form-urlencoded",
            ["X-Twilio-Signature"] = line:sub(1, tab - 1),
         }
         n = n + 1
         reqs[n] = wrk.format("POST", "/twilio/messages", headers, line:sub(tab + 1))
      end
      k = k + 1
   end
end

function request()
   if not verified then
      verified = true
      return reqs[1]
   end
   i = i + 1
   if i > n then
      i = 1
      wrapped = wrapped + 1
   end
   sent = sent + 1
   return reqs[i]
end

function response(status, headers, body)
   if status ~= 200 then
      non200 = non200 + 1
   end
end

function done(summary, latency, requests)
   local total_sent, distinct, bad, wraps, loaded = 0, 0, 0, 0, 0
   for _, t in ipairs(threads) do
      local s, tn = t:get("sent"), t:get("n")
      total_sent = total_sent + s
      distinct = distinct + math.min(s, tn)
      bad = bad + t:get("non200")
      wraps = wraps + t:get("wrapped")
      loaded = loaded + tn
   end
   local e = summary.errors
   io.write(string.format(
      'BENCH_RESULT {"requests": %d, "duration_us": %d, "sent": %d, "distinct": %d, ' ..
      '"loaded": %d, "wrapped": %d, "non200": %d, "err_connect": %d, "err_read": %d, ' ..
      '"err_write": %d, "err_status": %d, "err_timeout": %d, "p50_us": %d, "p90_us": %d, ' ..
      '"p99_us": %d, "mean_us": %.1f, "max_us": %d}\n',
      summary.requests, summary.duration, total_sent, distinct, loaded, wraps, bad,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.mean, latency.max))
end
