-- wrk script: POST a ~1 KiB CloudEvent with a unique id to /v1/events.
-- The API key comes from the environment variable SWITCHBOARD_API_KEY; the event type from BENCH_EVENT_TYPE.
local counter = 0
local padding = string.rep("x", 700)

-- Each run and each thread gets its own id prefix, so no event of one run repeats another's.
local threads = 0
setup = function(thread)
  threads = threads + 1
  thread:set("tid", string.format("%d-%d-%d", os.time(), math.floor(os.clock() * 1000000), threads))
end

init = function(args)
  key = os.getenv("SWITCHBOARD_API_KEY")
  event_type = os.getenv("BENCH_EVENT_TYPE") or "inquiry.completed"
end

request = function()
  counter = counter + 1
  local body = string.format(
    '{"specversion":"1.0","id":"bench-%s-%d","source":"https://identity.example.com","type":"%s",' ..
    '"data":{"inquiry":{"id":"inq_%d","ip_address":"198.51.100.%d","birthdate":"1990-04-12","note":"%s"}}}',
    tid, counter, event_type, counter, counter % 250, padding)
  return wrk.format("POST", "/v1/events",
    {["Authorization"] = "Bearer " .. key, ["Content-Type"] = "application/json"}, body)
end
