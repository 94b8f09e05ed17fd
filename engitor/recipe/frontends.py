"""Which front end reads a target: a Lua recipe, a YAML/JSON config, or a bare program.

`TARGET` on the command line is `recipe.lua`, `recipe.lua:IMAGE`, `config.yaml[:IMAGE]`, or a
program path (CLI-flag run). All of them end as a `Recipe` of `Image`s.
"""

from __future__ import annotations

from pathlib import Path

LUA_SUFFIXES = (".lua",)
CONFIG_SUFFIXES = (".yaml", ".yml", ".json")


def split_target(target: str) -> tuple[str, str | None]:
    """'web.lua:api' -> ('web.lua', 'api'); a plain path -> (path, None)."""
    head, sep, tail = target.rpartition(":")
    if sep and head.endswith(LUA_SUFFIXES + CONFIG_SUFFIXES) and tail and "/" not in tail:
        return head, tail
    return target, None


def kind_of(path: str) -> str:
    suffix = Path(path).suffix.lower()
    if suffix in LUA_SUFFIXES:
        return "lua"
    if suffix in CONFIG_SUFFIXES:
        return "config"
    return "program"
