"""Image names: what a valid one is, and the one a program or file gets when none is given.

Every front end (a program on the command line, a YAML or ops config, `engitor load PKG`)
names an unnamed image the same way, so `engitor build ./prög` and `engitor compile prög.yaml`
agree. Names are ASCII (they become tags in the store, QEMU -name values and file names):
accented letters lose their accent, anything else becomes '-'.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import PurePosixPath

IMAGE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
FALLBACK = "app"


def is_valid(name: object) -> bool:
    return isinstance(name, str) and IMAGE_NAME.fullmatch(name) is not None


def default_name(text: str) -> str:
    """A valid image name from a program path, a package or a file stem: its last part,
    accents dropped (ö -> o), other characters outside [A-Za-z0-9_.-] as '-'."""
    base = PurePosixPath(text).name if "/" in text else text
    plain = "".join(c for c in unicodedata.normalize("NFKD", base)
                    if not unicodedata.combining(c))
    cleaned = "".join(c if (c.isascii() and c.isalnum()) or c in "_.-" else "-" for c in plain)
    return cleaned.lstrip(".-_") or FALLBACK
