"""engitor's Lua: the sandboxed LuaJIT runtime (runtime.py) and the APIs of the script scope
(api/). The Lua half lives in the top-level lua/ folder."""
