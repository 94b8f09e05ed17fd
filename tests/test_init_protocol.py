"""The init's protocol header is the one both sides use, and it says everything they say.

init.c includes headers/engitor-init.h; engitor.protocol parses it. These checks read init.c
(and every C file beside it) for the status words it prints and the configuration keys it reads,
and the builder's rendered configuration for the keys it writes: each must be declared.
"""

from __future__ import annotations

import re
from pathlib import Path

from engitor import protocol, resources
from engitor.image import init as guest_init

GUEST = Path(guest_init.SOURCE).parent


def _guest_c() -> str:
    return "\n".join(p.read_text() for p in sorted(GUEST.glob("*.c")))


def test_header_parses() -> None:
    d = protocol.defines()
    assert d["MARKER"] == "@@engitor:" and d["CONFIG_PATH"] == "/.engitor/init"
    assert protocol.CONFIG_PATH == guest_init.CONFIG_PATH
    assert {"start", "exit", "error", "warning", "stopping", "probe ok"} <= protocol.statuses()


def test_init_includes_the_header() -> None:
    text = (GUEST / "init.c").read_text()
    assert f'#include "{protocol.HEADER}"' in text
    assert re.search(r'#define\s+CONFIG_PATH\s+"', text) is None  # not said a second time


def test_every_status_init_prints_is_declared() -> None:
    said = set(re.findall(r'"@@engitor:([a-z]+(?: ok)?)', _guest_c()))
    said |= set(re.findall(r'ENGITOR_MARKER\s+"([a-z]+(?: ok)?)', _guest_c()))
    assert said, "found no status lines in the guest C files"
    undeclared = said - protocol.statuses()
    assert not undeclared, f"add ENGITOR_STATUS_ lines for {sorted(undeclared)} to " \
                           f"{resources.headers_dir() / protocol.HEADER}"


def test_every_key_init_reads_or_the_builder_writes_is_declared() -> None:
    read = set(re.findall(r'strcmp\(line, "(\w+)"\)', _guest_c()))
    read |= {protocol.defines()[m] for m in re.findall(r"strcmp\(line, ENGITOR_(KEY_\w+)\)",
                                                       _guest_c())}
    config = guest_init.InitConfig(argv=("a",), env=(("K", "V"),), modules=("m",), probe=True)
    written = {line.split(" ", 1)[0] for line in config.render().decode().splitlines()}
    assert read and written <= read, (written, read)
    undeclared = read - protocol.config_keys()
    assert not undeclared, f"add ENGITOR_KEY_ lines for {sorted(undeclared)} to " \
                           f"{resources.headers_dir() / protocol.HEADER}"


def test_console_parser_uses_the_header_marker() -> None:
    from engitor.vm import instance

    assert instance.MARKER == protocol.MARKER
