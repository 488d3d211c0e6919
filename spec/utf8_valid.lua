-- spec/utf8_valid.lua: a strict UTF-8 validator (RFC 3629: no overlongs, no surrogates,
-- nothing above U+10FFFF), independent of the core and of any utf8 library (LuaJIT has
-- none). Loaded with dofile by spec/helpers.lua and fuzz/builder.lua:
--   local utf8_valid = dofile(".../spec/utf8_valid.lua"); utf8_valid(s) --> true | false
local find = string.find

return function(s)
  local i, n = 1, #s
  while i <= n do
    local c = s:byte(i)
    if c < 0x80 then
      -- a run of ASCII at once (a 10 MB JSON is mostly ASCII)
      i = find(s, "[\128-\255]", i + 1)
      if not i then return true end
    else
      local len, min
      if c >= 0xC2 and c <= 0xDF then len, min = 2, 0x80
      elseif c >= 0xE0 and c <= 0xEF then len, min = 3, 0x800
      elseif c >= 0xF0 and c <= 0xF4 then len, min = 4, 0x10000
      else return false end
      if i + len - 1 > n then return false end
      local cp = c % (2 ^ (7 - len))
      for k = 1, len - 1 do
        local cc = s:byte(i + k)
        if cc < 0x80 or cc > 0xBF then return false end
        cp = cp * 64 + (cc - 0x80)
      end
      if cp < min or cp > 0x10FFFF or (cp >= 0xD800 and cp <= 0xDFFF) then return false end
      i = i + len
    end
  end
  return true
end
