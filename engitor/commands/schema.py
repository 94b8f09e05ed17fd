"""`engitor schema [--json]`: every setting a recipe may use, from the settings table itself.

Text for people (name, type, default, doc, grouped), or a JSON Schema for editors and the YAML
front end's validation. The JSON document is the YAML front end's when it provides one
(`engitor.recipe.yaml_front.json_schema()`), else the schema of one image.
"""

from __future__ import annotations

import argparse
import importlib
import json
import shutil
import sys
import textwrap
from typing import Any

from engitor.recipe import settings

GROUPS = {"image": "What goes into the image", "run": "How it runs",
          "hook": "Hooks (Lua recipes only: functions run at build time)"}


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("schema", help="list every recipe setting (or print the JSON Schema)",
                       description="List every setting a recipe, a YAML config or the flags can "
                                   "set, with its type, default and meaning.")
    p.add_argument("--json", action="store_true", help="print the JSON Schema instead")
    p.set_defaults(func=run)


def json_schema() -> dict[str, Any]:
    try:
        yaml_front = importlib.import_module("engitor.recipe.yaml_front")
    except ModuleNotFoundError as e:
        if e.name != "engitor.recipe.yaml_front":
            raise
        yaml_front = None
    if yaml_front is not None and hasattr(yaml_front, "json_schema"):
        return yaml_front.json_schema()
    doc = settings.image_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "engitor image", **doc}


def text() -> str:
    rows = settings.schema_rows()
    width = max(len(r[0]) for r in rows) + 2
    columns = shutil.get_terminal_size((100, 24)).columns
    out = []
    for group, title in GROUPS.items():
        out.append(f"{title}:")
        for name, row_group, typ, default, doc in rows:
            if row_group != group:
                continue
            head = f"  {name:<{width}}{typ}" + (f" (default {default})" if default != "-" else "")
            out.append(head)
            out += textwrap.wrap(doc, max(40, columns - width - 4),
                                 initial_indent=" " * (width + 2),
                                 subsequent_indent=" " * (width + 2))
        out.append("")
    out.append('A Lua recipe declares images with image "NAME" { setting = value, … }; '
               "'engitor schema --json' prints the JSON Schema.")
    return "\n".join(out)


def run(args: argparse.Namespace) -> int:
    if args.json:
        json.dump(json_schema(), sys.stdout, indent=2, sort_keys=False)
        sys.stdout.write("\n")
    else:
        print(text())
    return 0
