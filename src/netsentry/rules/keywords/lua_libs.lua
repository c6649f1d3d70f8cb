-- netsentry: the Lua side of the rule sandbox (rules/keywords/lua.py).
-- Run once per Lua state before the script: builds the suricata.* libraries on the
-- Python bridge `B`, applies the sandbox to _G, and returns the state's private
-- controls (instruction counter, flags, protected call, loader), which the script
-- cannot reach.
return function(B, max_instructions, step, restricted, base_allowed, allowed)
  local pcall, error, type, setmetatable, load = pcall, error, type, setmetatable, load
  local tostring, select, pairs, ipairs = tostring, select, pairs, ipairs
  local sethook = debug.sethook
  local concat, tpack, tunpack = table.concat, table.pack, table.unpack
  local getmetatable = getmetatable

  local count, limit_hit, blocked_hit = 0, false, false
  local function hook()
    count = count + step
    if max_instructions > 0 and count > max_instructions then
      limit_hit = true
      error("instruction limit exceeded", 0)
    end
  end

  local libs = {}

  -- suricata.packet
  local Packet = {}
  Packet.__index = Packet
  function Packet:payload() return B.pkt_payload() end
  function Packet:packet() return B.pkt_packet() end
  function Packet:pcap_cnt() return B.pkt_pcap_cnt() end
  function Packet:timestamp() return B.pkt_ts() end
  function Packet:timestring_legacy() return B.pkt_timestring(false) end
  function Packet:timestring_iso8601() return B.pkt_timestring(true) end
  function Packet:tuple() return B.pkt_tuple() end
  function Packet:sp() return B.pkt_port(false) end
  function Packet:dp() return B.pkt_port(true) end
  libs["suricata.packet"] = {
    get = function()
      if not B.has_packet() then error("packet not available", 2) end
      return setmetatable({}, Packet)
    end,
  }

  -- suricata.flow
  local Flow = {}
  Flow.__index = Flow
  function Flow:timestamps() return B.flow_timestamps() end
  function Flow:timestring_legacy() return B.flow_timestring(false) end
  function Flow:timestring_iso8601() return B.flow_timestring(true) end
  function Flow:tuple() return B.flow_tuple() end
  function Flow:app_layer_proto() return B.flow_app_proto() end
  function Flow:has_alerts() return B.flow_has_alerts() end
  function Flow:id() return B.flow_id() end
  function Flow:stats() return B.flow_stats() end
  libs["suricata.flow"] = {
    get = function()
      if not B.has_flow() then return nil end
      return setmetatable({}, Flow)
    end,
  }

  -- suricata.flowvar / suricata.flowint
  local FlowVar = {}
  FlowVar.__index = FlowVar
  function FlowVar:value() return B.flowvar_get(self.name) end
  function FlowVar:set(value, len) B.flowvar_set(self.name, value, len) end
  libs["suricata.flowvar"] = {
    register = function(name)
      local ok, err = B.register("flowvar", tostring(name))
      if not ok then error(err, 2) end
    end,
    get = function(name) return setmetatable({name = tostring(name)}, FlowVar) end,
  }
  local FlowInt = {}
  FlowInt.__index = FlowInt
  function FlowInt:value() return B.flowint_get(self.name) end
  function FlowInt:set(v) return B.flowint_set(self.name, v) end
  function FlowInt:incr()
    local v = B.flowint_get(self.name)
    if v == nil then v = 0 end
    return B.flowint_set(self.name, v + 1)
  end
  function FlowInt:decr()
    local v = B.flowint_get(self.name)
    if v == nil or v == 0 then return B.flowint_set(self.name, 0) end
    return B.flowint_set(self.name, v - 1)
  end
  libs["suricata.flowint"] = {
    register = function(name)
      local ok, err = B.register("flowint", tostring(name))
      if not ok then error(err, 2) end
    end,
    get = function(name) return setmetatable({name = tostring(name)}, FlowInt) end,
  }

  -- suricata.log
  local function logger(level)
    return function(...)
      local parts = {}
      for i = 1, select("#", ...) do parts[#parts + 1] = tostring((select(i, ...))) end
      B.log(level, concat(parts, " "))
    end
  end
  libs["suricata.log"] = {
    info = logger("info"), notice = logger("notice"), warning = logger("warning"),
    error = logger("error"), debug = logger("debug"), config = logger("config"), perf = logger("perf"),
  }

  -- suricata.base64
  local b64 = {}
  for _, op in ipairs({"encode", "encode_nopad", "decode", "decode_nopad", "decode_padopt", "decode_rfc2045",
                          "decode_rfc4648"}) do
    b64[op] = function(s) return B.b64(op, s) end
  end
  libs["suricata.base64"] = b64

  -- suricata.hashlib
  local Hasher = {}
  Hasher.__index = Hasher
  function Hasher:update(data) B.hasher_update(self.h, data) end
  function Hasher:finalize() return B.hasher_final(self.h, false) end
  function Hasher:finalize_to_hex() return B.hasher_final(self.h, true) end
  local hashlib = {}
  for _, algo in ipairs({"sha256", "sha1", "md5"}) do
    hashlib[algo .. "_digest"] = function(s) return B.hash(algo, s, false) end
    hashlib[algo .. "_hexdigest"] = function(s) return B.hash(algo, s, true) end
    hashlib[algo] = function() return setmetatable({h = B.hasher_new(algo)}, Hasher) end
  end
  libs["suricata.hashlib"] = hashlib

  -- suricata.dataset
  local Dataset = {}
  Dataset.__index = Dataset
  function Dataset:get(name)
    local ok, err = B.dataset_find(tostring(name))
    if not ok then return nil, err end
    self.name = tostring(name)
    return 0
  end
  function Dataset:add(data, len)
    if self.name == nil then return -1, "dataset not set up: call get() first" end
    return B.dataset_op(self.name, "add", data, len)
  end
  function Dataset:lookup(data, len)
    if self.name == nil then return -1, "dataset not set up: call get() first" end
    return B.dataset_op(self.name, "lookup", data, len)
  end
  libs["suricata.dataset"] = {new = function() return setmetatable({}, Dataset) end}

  -- suricata.config / suricata.util
  libs["suricata.config"] = {log_path = function() return B.log_path() end}
  libs["suricata.util"] = {thread_info = function()
    local id, name, group = B.thread_info()
    return {id = id, name = name, group_name = group}
  end}

  -- transactions: methods that read the protocol's buffers (their netsentry names)
  local function txlib(proto, methods, attrs)
    local Tx = {}
    Tx.__index = Tx
    for m, spec in pairs(methods) do
      local name, dir, first = spec[1], spec[2], spec[3]
      Tx[m] = function(self)
        local v = B.tx_buffer(proto, name, dir)
        if first and type(v) == "table" then return v[1] end
        return v
      end
    end
    for m, attr in pairs(attrs or {}) do
      Tx[m] = function(self) return B.tx_attr(proto, attr) end
    end
    return {
      get_tx = function()
        if not B.tx(proto) then return nil, "no " .. proto .. " transaction" end
        return setmetatable({}, Tx)
      end,
    }
  end
  local http = txlib("http", {
    request_line = {"http.request_line", true}, response_line = {"http.response_line", false},
    request_uri_raw = {"http.uri.raw", true}, request_uri_normalized = {"http.uri", true},
    request_host = {"http.host", true}, request_method = {"http.method", true},
    request_protocol = {"http.protocol", true}, response_status = {"http.stat_code", false},
    request_headers_raw = {"http.header.raw", true}, response_headers_raw = {"http.header.raw", false},
    request_user_agent = {"http.user_agent", true},
  })
  -- bodies: a table of the pieces (ours: the whole body as one piece); headers: name -> value
  local function body(dir)
    return function(self)
      local v = B.tx_buffer("http", dir and "http.request_body" or "http.response_body", dir)
      if v == nil then return nil end
      return {v}
    end
  end
  local function headers(dir)
    return function(self)
      local lines = B.tx_buffer("http", dir and "http.request_header" or "http.response_header", dir)
      if lines == nil then return nil end
      local t = {}
      for _, line in ipairs(lines) do
        local k, v = line:match("^([^:]*):%s?(.*)$")
        if k ~= nil then t[k] = v end
      end
      return t
    end
  end
  local get_tx = http.get_tx
  http.get_tx = function()
    local tx, err = get_tx()
    if tx == nil then return nil, err end
    local mt = getmetatable(tx)
    mt.request_body, mt.response_body = body(true), body(false)
    mt.request_headers, mt.response_headers = headers(true), headers(false)
    mt.request_header = function(self, name)
      local h = headers(true)(self)
      if h == nil then return nil end
      for k, v in pairs(h) do if k:lower() == tostring(name):lower() then return v end end
      return nil
    end
    mt.response_header = function(self, name)
      local h = headers(false)(self)
      if h == nil then return nil end
      for k, v in pairs(h) do if k:lower() == tostring(name):lower() then return v end end
      return nil
    end
    return tx
  end
  libs["suricata.http"] = http
  local dns = txlib("dns", {}, {})
  local DnsTx = {}
  DnsTx.__index = DnsTx
  for _, m in ipairs({"txid", "rcode", "rcode_string", "recursion_desired", "rrname", "queries",
                      "answers", "authorities"}) do
    DnsTx[m] = function(self) return B.dns(m) end
  end
  dns.get_tx = function()
    if not B.tx("dns") then return nil, "no dns transaction" end
    return setmetatable({}, DnsTx)
  end
  libs["suricata.dns"] = dns
  local Rule = {}
  Rule.__index = Rule
  for _, m in ipairs({"action", "priority", "msg", "class_description", "sid", "rev", "gid"}) do
    Rule[m] = function(self) return B.rule(m) end
  end
  libs["suricata.rule"] = {get_rule = function() return setmetatable({}, Rule) end}
  local tls = txlib("tls", {
    get_client_sni = {"tls.sni", true}, get_server_serial = {"tls.cert_serial", false},
    get_server_cert_subject = {"tls.cert_subject", false}, get_server_cert_issuer = {"tls.cert_issuer", false},
    get_server_cert_fingerprint = {"tls.cert_fingerprint", false},
    get_client_serial = {"tls.cert_serial", true}, get_client_cert_subject = {"tls.cert_subject", true},
    get_client_cert_issuer = {"tls.cert_issuer", true},
  })
  local tls_get_tx = tls.get_tx
  tls.get_tx = function()
    local tx, err = tls_get_tx()
    if tx == nil then return nil, err end
    local mt = getmetatable(tx)
    mt.get_client_version = function(self) return B.tls_version(true) end
    mt.get_server_version = function(self) return B.tls_version(false) end
    return tx
  end
  libs["suricata.tls"] = tls
  -- suricata.ja3 (util-lua-ja3.c): a TLS transaction's ja3 / ja3s; enable_ja3 is a no-op
  -- (ja3 is always worked out here)
  local ja3 = txlib("tls", {
    ja3_get_hash = {"ja3.hash", true}, ja3_get_string = {"ja3.string", true},
    ja3s_get_hash = {"ja3s.hash", false}, ja3s_get_string = {"ja3s.string", false},
  })
  ja3.enable_ja3 = function() end
  libs["suricata.ja3"] = ja3
  local ssh = txlib("ssh", {server_proto = {"ssh.proto", false},
                           client_proto = {"ssh.proto", true},
                           server_software = {"ssh.software", false},
                           client_software = {"ssh.software", true},
                           client_hassh = {"ssh.hassh", true},
                           client_hassh_string = {"ssh.hassh.string", true},
                           server_hassh = {"ssh.hassh.server", false},
                           server_hassh_string = {"ssh.hassh.server.string", false}})
  ssh.enable_hassh = function() end      -- ours computes HASSH whenever it is asked for
  libs["suricata.ssh"] = ssh
  -- suricata.ntp (util-lua-ntp.c): the message's header fields, reference_id as its 4 raw bytes
  libs["suricata.ntp"] = txlib("ntp", {}, {version = "version", mode = "mode", stratum = "stratum",
                                           reference_id = "reference_id"})

  -- Suricata 7's logging globals, for scripts written for it
  local legacy = {SCLogInfo = logger("info"), SCLogNotice = logger("notice"), SCLogWarning = logger("warning"),
                  SCLogError = logger("error"), SCLogDebug = logger("debug"), SCLogConfig = logger("config")}

  -- print goes to the sensor's standard output
  local function lprint(...)
    local parts = {}
    for i = 1, select("#", ...) do parts[#parts + 1] = tostring((select(i, ...))) end
    B.print(concat(parts, "\t"))
  end

  if restricted then
    -- allow-restricted-functions: the whole standard library, require() finds ours too
    for name, lib in pairs(libs) do package.loaded[name] = lib end
    package.loaded.python = nil
    _G.python = nil
    _G.print = lprint
    for k, v in pairs(legacy) do _G[k] = v end
  else
    local keep = {}
    for _, n in ipairs(base_allowed) do keep[n] = true end
    local libnames = {table = true, string = true, math = true, utf8 = true}
    for k, v in pairs(_G) do
      if libnames[k] then
        local ok_names = {}
        for _, n in ipairs(allowed[k]) do ok_names[n] = true end
        for fname, f in pairs(v) do
          if type(f) == "function" and not ok_names[fname] then
            v[fname] = function() blocked_hit = true; error("Blocked Lua function called: " .. fname, 2) end
          end
        end
      elseif k ~= "_G" and k ~= "_VERSION" then
        if type(v) == "function" and not keep[k] then
          _G[k] = function() blocked_hit = true; error("Blocked Lua function called: " .. k, 2) end
        elseif type(v) ~= "function" then
          _G[k] = nil
        end
      end
    end
    _G.print = lprint
    for k, v in pairs(legacy) do _G[k] = v end
    _G.require = function(name)
      local lib = libs[name]
      if lib == nil then error("Module not found: " .. tostring(name), 2) end
      return lib
    end
    -- the string metatable's __index is the (filtered) string table already
  end

  return {
    reset = function()
      count, limit_hit, blocked_hit = 0, false, false
      sethook(hook, "", step)
    end,
    limit_hit = function() return limit_hit end,
    blocked_hit = function() return blocked_hit end,
    call = function(fn, ...)
      local r = tpack(pcall(fn, ...))
      sethook()
      return tunpack(r, 1, r.n)
    end,
    load = function(src, name)
      local chunk, err = load(src, name, "t", _G)
      if chunk == nil then error(err, 0) end
      return chunk
    end,
  }
end
