"""`--env-file FILE` in Docker's format (docker/cli opts/envfile.go), so users' files work as is.

One `KEY=VALUE` a line; blank lines and lines starting with `#` are skipped; the value is taken
literally (quotes are part of it, as with Docker); a line with only `KEY` takes the variable
from engitor's own environment and is skipped when it is not set there.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from engitor.errors import UserError

WHITESPACE = " \t"


def parse(text: str, where: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    environ = os.environ if environ is None else environ
    out: dict[str, str] = {}
    for number, raw in enumerate(text.removeprefix("\ufeff").splitlines(), 1):
        line = raw.lstrip(WHITESPACE)
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if not name:
            raise UserError("no variable name before '='", hint="write KEY=VALUE",
                            where=f"{where}:{number}")
        if any(c in name for c in WHITESPACE):
            raise UserError(f"variable name {name.strip()!r} contains whitespace",
                            hint="write KEY=VALUE with no space before '='",
                            where=f"{where}:{number}")
        if sep:
            out[name] = value
        elif name in environ:
            out[name] = environ[name]
    return out


def load(path: str) -> dict[str, str]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"--env-file {path}: no such file", hint="check the path") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"--env-file {path}: cannot read it ({e})",
                        hint="a UTF-8 text file of KEY=VALUE lines") from None
    return parse(text, path)
