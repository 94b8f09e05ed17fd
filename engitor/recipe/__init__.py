"""The recipe model and the front ends that lower to it (Lua, YAML, ops config.json, CLI flags)."""
