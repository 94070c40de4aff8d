-- wrk script for every benchmark scenario. Arguments: scenario name, sessions file, htmx path,
-- htmx field name, number of wrk threads, the User-Agent the sessions were signed in with.
-- Each thread takes its own share of the signed-in sessions in turn, and every response status
-- is counted so the runner can refuse a run with unexpected answers.

local sessions = {}
local scenario, htmx_path, htmx_field, user_agent
local counter = 0
local first, count = 0, 1
statuses = {}
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_index", #threads - 1)
end

function init(args)
  scenario = args[1]
  htmx_path = args[3]
  htmx_field = args[4]
  user_agent = args[6]
  for line in io.lines(args[2]) do
    local cookie, csrf, etag = line:match("([^\t]*)\t([^\t]*)\t([^\t]*)")
    table.insert(sessions, { cookie = cookie, csrf = csrf, etag = etag })
  end
  -- Each thread drives its own share of the sessions, as each person uses one client: two
  -- threads taking turns on one session wrote a value the other had just written, so that a
  -- third of the PATCHes and half of the htmx saves changed nothing (answered with a read).
  local thread_count = tonumber(args[5]) or 1
  local share = math.floor(#sessions / thread_count)
  first = thread_index * share
  count = (thread_index == thread_count - 1) and (#sessions - first) or share
end

function request()
  counter = counter + 1
  local s = sessions[first + (counter % count) + 1]
  -- The agent the session was signed in with, as a browser keeps sending its own.
  local headers = { Cookie = s.cookie, ["User-Agent"] = user_agent }
  -- Every visit to a session changes its value: each write is a real one.
  local flip = (math.floor(counter / count) % 2 == 0)
  if scenario == "warm_get" or scenario == "cold_get" then
    return wrk.format("GET", "/api/user/settings", headers)
  elseif scenario == "conditional_get" then
    headers["If-None-Match"] = s.etag
    return wrk.format("GET", "/api/user/settings", headers)
  elseif scenario == "patch" then
    headers["X-CSRFToken"] = s.csrf
    headers["Content-Type"] = "application/json"
    local theme = flip and "light" or "dark"
    return wrk.format("PATCH", "/api/user/settings", headers, '{"theme": "' .. theme .. '"}')
  elseif scenario == "settings_page" then
    return wrk.format("GET", "/settings", headers)
  elseif scenario == "htmx_save" then
    headers["X-CSRFToken"] = s.csrf
    headers["HX-Request"] = "true"
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    local digest = flip and "daily" or "weekly"
    return wrk.format("POST", htmx_path, headers, htmx_field .. "=" .. digest)
  end
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local merged = {}
  for _, thread in ipairs(threads) do
    local counts = thread:get("statuses")
    for code, n in pairs(counts) do
      merged[code] = (merged[code] or 0) + n
    end
  end
  io.write("STATUSES")
  for code, n in pairs(merged) do
    io.write(" " .. code .. "=" .. n)
  end
  io.write("\n")
  local e = summary.errors
  io.write(string.format(
    "RESULT rps=%.2f p50_us=%.0f p99_us=%.0f requests=%d socket_errors=%d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99), summary.requests,
    e.connect + e.read + e.write + e.timeout))
end
