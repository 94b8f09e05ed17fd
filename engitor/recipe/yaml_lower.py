"""YAML -> the Lua recipe program: the compiler both YAML front ends share.

`ValueCompiler` turns a YAML document's settings (anchors, aliases, merge keys, `!env`) into a
`lua_emit.Program`; `Compiled` is the result with what maps the Lua back to the config's lines;
`remap` rewords an error of the Lua into one at the config's line and column. The engitor YAML
front end (yaml_front) and the ops config.json front end (ops_compat) both use it, so it lives
below both of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from engitor.errors import UserError, did_you_mean
from engitor.recipe import lua_emit, settings
from engitor.recipe.lua_emit import (
    Entry,
    Env,
    ImageDecl,
    Lit,
    Local,
    Merge,
    Origin,
    Program,
    Ref,
    Seq,
    Table,
)
from engitor.recipe.yaml_doc import ENV_TAG, MAP, MERGE, NULL, SEQ, Comments, Document, Survey, kind

HOOK_HINT = ("hooks are Lua functions, which YAML cannot hold: write a Lua recipe "
             "('engitor compile FILE -o recipe.lua' gives one to start from)")
EXAMPLE_HINT = "e.g. program: ./server, or images: {web: {program: ./server}}"


@dataclass
class Compiled:
    """A config compiled to Lua: the text, and what maps the Lua back to the config."""

    path: Path  # the config file (relative paths in it resolve from its folder)
    display: str
    program: Program
    output: lua_emit.Output
    warnings: list[str] = field(default_factory=list)

    @property
    def lua(self) -> str:
        return self.output.text

    @property
    def chunkname(self) -> str:
        return f"{self.display} (as Lua)"


# ---------------------------------------------------------------------------------------------
# YAML -> Program


class ValueCompiler:
    def __init__(self, doc: Document, survey: Survey, comments: Comments):
        self.doc = doc
        self.survey = survey
        self.comments = comments
        self.locals: list[Local] = []
        self._local_of: dict[int, Local] = {}
        self._names: dict[str, Node] = {}
        self._block_comments: dict[int, list[str]] = {}  # x- block value -> its key's comments

    def program(self, default_name: str) -> Program:
        doc, root = self.doc, self.doc.root
        if root is None or value_is_null(root):
            raise UserError("the file is empty", hint=f"write the image's settings: {EXAMPLE_HINT}",
                            where=f"{doc.display}:1:1")
        if not isinstance(root, MappingNode):
            raise doc.error(root, f"expected a mapping of settings, got a {kind(root)}",
                            EXAMPLE_HINT)
        pairs = doc.pairs(root, "the file")
        keys = {doc.text_key(k, "a setting name") if not is_merge(k) else "<<": (k, v)
                for k, v in pairs}
        for key, (key_node, value) in keys.items():
            if key.startswith("x-"):
                trailing = self.comments.trailing.get(id(key_node))
                self._block_comments[id(value)] = self._leading(key_node) + \
                    ([trailing] if trailing else [])
        images: list[ImageDecl] = []
        if "images" in keys:
            stray = [k for k in keys if k not in ("images",) and not k.startswith("x-")]
            if stray:
                raise doc.error(keys[stray[0]][0],
                                f"{stray[0]!r} is beside 'images:': settings belong to an image",
                                "put it under each image, or share it: x-common: &common {…} "
                                "and <<: *common in each image")
            images_key, images_value = keys["images"]
            images = self._images(images_key, images_value)
        else:
            body = MappingNode(root.tag, [(k, v) for k, v in pairs
                                          if is_merge(k) or (not k.value.startswith("x-")
                                          and k.value != "name")],
                               root.start_mark, root.end_mark)
            name = default_name
            if "name" in keys:
                _, name_node = keys["name"]
                name = self._image_name(name_node)
            if not any(is_merge(k) or not k.value.startswith("x-") for k, _ in body.value):
                raise doc.error(root, "the file declares no settings", EXAMPLE_HINT)
            origin = doc.origin(root, "")
            images = [ImageDecl(name, self._body(body, ""), origin)]
        self._check_images(images)
        return Program(doc.display, images, self.locals, header=list(self.comments.header),
                       trailer=list(self.comments.trailer))

    def _images(self, key: Node, node: Node) -> list[ImageDecl]:
        doc = self.doc
        if not isinstance(node, MappingNode) or not node.value:
            raise doc.error(node if isinstance(node, MappingNode | SequenceNode) else key,
                            "images: expected a mapping of image names to settings",
                            "images: {web: {program: ./server}, api: {program: ./api}}")
        out = []
        leading = self._leading(key)
        for name_node, body in doc.pairs(node, "images"):
            if is_merge(name_node):
                raise doc.error(name_node, "images: a merge key cannot stand for images",
                                "merge settings inside each image: web: {<<: *common, …}")
            name = self._image_name(name_node)
            path = f"images.{name}"
            decl = ImageDecl(name, self._body(body, path), doc.origin(name_node, path),
                             leading=leading + self._leading(name_node))
            leading = []
            if self.comments.trailing.get(id(name_node)):
                decl.leading.append(self.comments.trailing[id(name_node)])
            out.append(decl)
        return out

    def _image_name(self, node: Node) -> str:
        if not isinstance(node, ScalarNode) or node.tag == ENV_TAG \
                or not isinstance(self.doc.scalar(node), str):
            raise self.doc.error(node, "an image name must be text",
                                 "names use letters, digits, '_', '.', '-'")
        return self.doc.string(node)

    def _body(self, node: Node, path: str) -> lua_emit.Node:
        """An image's settings: a mapping (maybe with merge keys) or an alias of one."""
        if not isinstance(node, MappingNode):
            raise self.doc.error(node, f"{path or 'the image'}: expected a mapping of settings, "
                                       f"got a {kind(node)}", EXAMPLE_HINT)
        return self.value(node, path, settings_table=True)

    # -- values ------------------------------------------------------------------------------

    def value(self, node: Node, path: str, *, settings_table: bool = False,
              setting: settings.Setting | None = None) -> lua_emit.Node:
        shared = self.survey.count.get(id(node), 0) > 1
        if shared and not (isinstance(node, ScalarNode) and node.tag == ENV_TAG):
            return Ref(self.doc.origin(node, path), self._local(node, path, settings_table))
        return self._value(node, path, settings_table, setting)

    def _local(self, node: Node, path: str, settings_table: bool) -> Local:
        local = self._local_of.get(id(node))
        if local is None:
            anchor = self.doc.anchor(node) or "shared"
            name = self._local_name(anchor, node)
            path = self.survey.paths.get(id(node), path)
            local = Local(name, self._value(node, path, settings_table, None),
                          leading=self._block_comments.get(id(node), []))
            self._local_of[id(node)] = local
            self.locals.append(local)  # after the locals its value uses
        return local

    def _local_name(self, anchor: str, node: Node) -> str:
        name = anchor.replace("-", "_")
        if name in lua_emit.HELPER_NAMES:
            name += "_"  # the recipe calls image, merge, env and number after the locals
        if not lua_emit.is_name(name):
            what = "a Lua keyword" if name in lua_emit.KEYWORDS else "not a name Lua can use"
            raise self.doc.error(node, f"anchor &{anchor} becomes a Lua variable, and "
                                       f"{name!r} is {what}",
                                 "name anchors with letters, digits, '_' and '-' (not first), "
                                 "and not a Lua keyword: &common, &base_env")
        n = 2
        base = name
        while name in self._names and self._names[name] is not node:
            name = f"{base}_{n}"
            n += 1
        self._names[name] = node
        return name

    def _value(self, node: Node, path: str, settings_table: bool,
               setting: settings.Setting | None) -> lua_emit.Node:
        doc = self.doc
        origin = doc.origin(node, path)
        if isinstance(node, ScalarNode):
            if node.tag == ENV_TAG:
                number = setting is not None and isinstance(setting.type, settings.Int)
                return Env(origin, doc.env_parts(node), number)
            scalar = doc.scalar(node)
            if scalar is None and setting is None:
                raise doc.error(node, f"{path}: null is not a value here",
                                "remove the item, or quote it ('null') if you mean the text")
            return Lit(origin, scalar)
        if isinstance(node, SequenceNode):
            if node.tag != SEQ:
                raise doc.error(node, f"the tag {node.tag} is not allowed here")
            items = []
            for item in node.value:
                ir = self.value(item, path)
                self._attach(ir, item)
                items.append(ir)
            return Seq(origin, items)
        if node.tag != MAP or not isinstance(node, MappingNode):
            raise doc.error(node, f"the tag {node.tag} is not allowed here")
        merges: list[lua_emit.Node] = []
        merge_key: Node | None = None
        entries = []
        for key, value in doc.pairs(node, path or "the image"):
            if is_merge(key):
                merges = self._merge_sources(value, path, settings_table)
                merge_key = key
                continue
            name = doc.text_key(key, "a key")
            sub = f"{path}.{name}" if path else name
            setting = settings.SETTINGS_BY_NAME.get(name) if settings_table else None
            if settings_table and value_is_null(value):
                ir_value: lua_emit.Node = Lit(doc.origin(value, sub), None)
            else:
                ir_value = self.value(value, sub, setting=setting)
            entry = Entry(doc.origin(key, sub), name, ir_value)
            self._attach(entry, key)
            entries.append(entry)
        table = Table(origin, entries)
        if merges:
            merged = Merge(origin, merges, table)
            if merge_key is not None:
                self._attach(merged, merge_key)  # the comments of the `<<:` line
            if entries and merged.leading:
                entries[0].leading[:0], merged.leading = merged.leading, []
            return merged
        return table

    def _merge_sources(self, node: Node, path: str, settings_table: bool) -> list[lua_emit.Node]:
        """`<<: *a` or `<<: [*a, *b]`; in YAML the first listed wins, in merge() the last."""
        sources = node.value if isinstance(node, SequenceNode) and \
            self.survey.count.get(id(node), 0) <= 1 else [node]
        out = []
        for source in sources:
            if not isinstance(source, MappingNode):
                raise self.doc.error(source, f"<<: expected a mapping (or a list of them) to "
                                             f"merge, got a {kind(source)}",
                                     "<<: *common, where common is &common {…}")
            out.append(self.value(source, path, settings_table=settings_table))
        return out[::-1]

    def _attach(self, ir: lua_emit.Node, node: Node) -> None:
        ir.leading = self._leading(node)
        ir.trailing = self.comments.trailing.get(id(node))

    def _leading(self, node: Node) -> list[str]:
        return list(self.comments.leading.get(id(node), []))

    # -- checks -----------------------------------------------------------------------------

    def _check_images(self, images: list[ImageDecl]) -> None:
        for decl in images:
            for key, entry in effective(decl.body).items():
                if key in settings.HOOKS:
                    raise UserError(f"{entry.origin.path}: {key} is a hook", hint=HOOK_HINT,
                                    where=where(self.doc.display, entry.origin))
                if key not in settings.SETTINGS_BY_NAME:
                    if key == "name" and decl.origin.path:
                        hint = "an image's name is its key under images:"
                    else:
                        hint = did_you_mean(key, [*settings.SETTINGS_BY_NAME]) or \
                            "run 'engitor schema' for the list of settings"
                    path = entry.origin.path
                    raise UserError(f"{path + ': ' if path != key else ''}unknown setting "
                                    f"{key!r}", hint=hint,
                                    where=where(self.doc.display, entry.origin))


def is_merge(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == MERGE


def value_is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == NULL


def effective(node: lua_emit.Node) -> dict[str, Entry]:
    """The entries a settings table ends up with: merges resolved, later sources winning."""
    if isinstance(node, Ref):
        return effective(node.local.value)
    if isinstance(node, Table):
        return {e.key: e for e in node.entries}
    if isinstance(node, Merge):
        out: dict[str, Entry] = {}
        for source in (*node.sources, node.own):
            out.update(effective(source))
        return out
    return {}


def where(display: str, origin: Origin) -> str:
    if origin.line <= 0:
        return origin.path or "command line"
    return f"{display}:{origin.line}:{origin.column}"


# ---------------------------------------------------------------------------------------------
# Lua errors -> the config's line and column

_ENV_ERROR = re.compile(r"environment variable (\S+) is not set")


def remap(error: UserError, compiled: Compiled) -> UserError:
    """An error the Lua front end located in the compiled Lua, located in the config."""
    prefix = compiled.chunkname + ":"
    if not (error.where or "").startswith(prefix):
        return error
    try:
        line = int(error.where[len(prefix):])  # type: ignore[index]
    except ValueError:
        return error
    out = compiled.output
    display = compiled.display
    on_line = out.on_line(line)
    decl = next((d for first, last, d in out.spans if first <= line <= last), None)
    message, hint = error.message, error.hint
    m = _ENV_ERROR.search(message)
    if m:
        name = m.group(1)
        env = next((n for n in on_line if isinstance(n, Env) and
                    any(isinstance(p, tuple) and p[0] == name for p in n.parts)), None)
        origin = env.origin if env else on_line[0].origin if on_line else None
        return UserError(f"{origin.path + ': ' if origin and origin.path else ''}"
                         f"environment variable {name} is not set",
                         hint=f"set it ({name}=… engitor …), or give a default: "
                              f"${{{name}:-value}}",
                         where=where(display, origin) if origin else display)
    key = message.split(":", 1)[0]
    if key in settings.SETTINGS_BY_NAME and ": " in message:
        # The entry that gave the image this key: the image's own or a merged one, else the
        # entry written on the line Lua names (a table shared through a local).
        entry = effective(decl.body).get(key) if decl is not None else None
        entry = entry or next((n for n in on_line if isinstance(n, Entry) and n.key == key),
                              None)
        if entry is not None:
            origin, path, rest = _refine(entry, message[len(key) + 2:])
            return UserError(f"{path}: {rest}", hint=hint, where=where(display, origin))
    if decl is not None:
        if message.endswith("has no program"):
            hint = "set it: program: ./server (or package: python3)"
        return UserError(message, hint=hint, where=where(display, decl.origin))
    origin = on_line[0].origin if on_line else None
    return UserError(message, hint=hint, where=where(display, origin) if origin else display)


_ITEM = re.compile(r"item (\d+): ")


def _refine(entry: Entry, rest: str) -> tuple[Origin, str, str]:
    """The node a settings error is about: a list item ('item 2: …') or a table entry
    ('MODE: …', "key 'A=B': …") inside the entry's value, else the entry's key."""
    value: lua_emit.Node = entry.value
    while isinstance(value, Ref):
        value = value.local.value
    m = _ITEM.match(rest)
    if m and isinstance(value, Seq) and 0 < int(m.group(1)) <= len(value.items):
        return value.items[int(m.group(1)) - 1].origin, entry.origin.path, rest
    if isinstance(value, Table | Merge):
        entries = effective(value)
        for name, sub in entries.items():
            if rest.startswith(f"{name}: "):
                return sub.value.origin, sub.origin.path, rest[len(name) + 2:]
            if rest.startswith(f"key {name!r}: "):
                return sub.origin, entry.origin.path, rest
    return entry.origin, entry.origin.path, rest
