"""The YAML front end: a declarative config compiles to the Lua recipe it means, and that Lua is
evaluated by the Lua front end like any hand-written recipe (one path to the model).

    compiled = compile_config(Path("web.yaml"))    # the Lua text: compiled.lua
    recipe = evaluate(compiled)                      # -> model.Recipe, through lua_front
    recipe = load_config(Path("web.yaml"))         # both, warnings to stderr

A file declares one image (its settings at the top level, `name:` optional, default the file's
stem) or several (`images: {NAME: {settings}, …}`); top-level keys starting with `x-` are
ignored, a place for anchors. Anchors, aliases and merge keys (`<<: *common`) become Lua locals
and `merge(…)`; `!env "…${VAR}…"` reads the environment when the recipe is evaluated. An ops
config.json (see ops_compat) compiles the same way.

Checks of the file's shape (keys, names, anchors, nulls) happen while compiling, at the YAML
node's mark; values are checked once, by the settings table when the Lua runs, and those errors
are mapped back from the Lua line to the config's line and column.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from engitor.errors import UserError
from engitor.recipe import lua_emit, ops_compat, settings
from engitor.recipe.model import Recipe
from engitor.recipe.names import IMAGE_NAME, default_name
from engitor.recipe.yaml_doc import Document
from engitor.recipe.yaml_lower import Compiled, ValueCompiler, remap, where

# ---------------------------------------------------------------------------------------------
# Public API


def compile_config(path: Path, *, source: str | None = None, display: str | None = None,
                   program: str | None = None, name: str | None = None,
                   args: Sequence[str] | None = None) -> Compiled:
    """Compile a YAML config or an ops config.json to Lua. `program` (with `name`, `args`)
    is the `-c CONFIG PROGRAM` form: the program the command line names."""
    path = Path(path)
    display = display or str(path)
    json = path.suffix.lower() == ".json"
    doc = Document(source, display, json=json) if source is not None else \
        Document.read(path, display, json=json)
    if ops_compat.is_ops_config(doc, path):
        return ops_compat.compile_ops(doc, path, program=program, name=name, args=args)
    survey = doc.survey()
    compiler = ValueCompiler(doc, survey, doc.comments(survey))
    prog = compiler.program(name or default_name(path.stem))
    if program is not None:
        ops_compat.set_program(prog, program, path, name)
    return Compiled(path, display, prog, lua_emit.render(prog))


def evaluate(compiled: Compiled) -> Recipe:
    """Evaluate the compiled Lua through the Lua front end; errors point into the config."""
    from engitor.recipe import lua_front

    try:
        recipe = lua_front.load_recipe(compiled.path, source=compiled.lua,
                                       chunkname=compiled.chunkname)
    except UserError as e:
        raise remap(e, compiled) from None
    images = []
    for image, decl in zip(recipe.images, compiled.program.images, strict=True):
        images.append(dataclasses.replace(image, where=where(compiled.display, decl.origin)))
    return Recipe(source=compiled.display, images=tuple(images))


def warn_stderr(message: str) -> None:
    print(f"engitor: {message}", file=sys.stderr, flush=True)


def load_with_program(config_path: Path, program: str, name: str | None, *,
                      args: Sequence[str] | None = None) -> Recipe:
    """`engitor run -c CONFIG PROGRAM`: the config (ops config.json, or an engitor YAML of one
    image) with the command line's program; `args`, when the command line gives some, replace
    the config's Args as ops' -a does (and take part in ops' copy of the first argument)."""
    config_path = Path(config_path)
    if not config_path.is_file():
        raise UserError(f"{config_path}: no such config file", hint="check the -c path")
    compiled = compile_config(config_path, program=program, name=name, args=args)
    for message in compiled.warnings:
        warn_stderr(message)
    return evaluate(compiled)


def load_config(path: Path, *, warn: Callable[[str], None] = warn_stderr) -> Recipe:
    """A YAML config or ops config.json -> the recipe model (through the Lua front end)."""
    compiled = compile_config(Path(path))
    for message in compiled.warnings:
        warn(message)
    return evaluate(compiled)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a config file, from the settings table (for editors' YAML language
    servers: `# yaml-language-server: $schema=…`, or `engitor schema --json > …`)."""
    image = settings.image_json_schema()
    props = {name: _env_allowed(prop) for name, prop in image["properties"].items()}
    extension = {"^x-": {"description": "Ignored by engitor: a place for anchors (&name) "
                                        "that images merge (<<: *name)."}}
    merge = {"description": "YAML merge key: settings shared through an anchor."}
    single = {"type": "object", "properties": {
        "name": {"type": "string", "pattern": f"^{IMAGE_NAME.pattern}$",
                 "description": "The image's name (default: the file's name)."},
        **props, "<<": merge}, "patternProperties": extension, "additionalProperties": False}
    several = {"type": "object", "required": ["images"], "properties": {
        "images": {"type": "object", "minProperties": 1,
                   "description": "The images this file declares, by name.",
                   "propertyNames": {"pattern": f"^{IMAGE_NAME.pattern}$"},
                   "additionalProperties": {"$ref": "#/$defs/image"}}},
        "patternProperties": extension, "additionalProperties": False}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "engitor config",
        "description": "One image (its settings at the top level) or several (under images:). "
                       "Values tagged !env read ${VAR} from the environment.",
        "$defs": {"image": {"type": "object", "properties": {**props, "<<": merge},
                            "additionalProperties": False}},
        "if": {"type": "object", "required": ["images"]},
        "then": several,
        "else": single,
    }


# What a value tagged !env looks like to an editor: text with a ${NAME} in it.
ENV_TEXT = {"type": "string", "pattern": r"\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}",
            "description": "Text tagged !env: ${NAME} is read from the environment."}


def _env_allowed(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` where every scalar may also be !env text."""
    schema = dict(schema)
    if schema.get("type") == "array":
        schema["items"] = _env_allowed(schema["items"])
        return schema
    if schema.get("type") == "object":
        schema["additionalProperties"] = _env_allowed(schema["additionalProperties"])
        return schema
    if "anyOf" in schema and any(s.get("type") in ("array", "object") for s in schema["anyOf"]):
        schema["anyOf"] = [_env_allowed(s) for s in schema["anyOf"]]
        return schema
    if "not" in schema:
        return schema
    meta: dict[str, Any] = {k: schema.pop(k) for k in ("description", "default") if k in schema}
    return {"anyOf": [schema, ENV_TEXT], **meta}
