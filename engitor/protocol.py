"""The guest init's protocol with the host, read from the header init.c includes.

headers/engitor-init.h declares the configuration file's path and keys and the console's
status markers; the C side includes it, this module parses its `#define NAME "text"` lines, so
the two cannot disagree (tests/test_init_protocol.py also checks init.c against it).
"""

from __future__ import annotations

import functools
import re

from engitor import resources

HEADER = "engitor-init.h"
_DEFINE = re.compile(r'^#define\s+ENGITOR_(\w+)\s+"((?:[^"\\]|\\.)*)"\s*$', re.M)


@functools.cache
def defines() -> dict[str, str]:
    """NAME -> text of every string #define in the header (without the ENGITOR_ prefix)."""
    text = (resources.headers_dir() / HEADER).read_text()
    return {m.group(1): m.group(2).encode().decode("unicode_escape") for m in _DEFINE.finditer(text)}


def config_keys() -> frozenset[str]:
    return frozenset(v for k, v in defines().items() if k.startswith("KEY_"))


def statuses() -> frozenset[str]:
    return frozenset(v for k, v in defines().items() if k.startswith("STATUS_"))


CONFIG_PATH: str = defines()["CONFIG_PATH"]
MARKER: str = defines()["MARKER"]
PROBE_LINE: bytes = (MARKER + defines()["STATUS_PROBE"]).encode()
