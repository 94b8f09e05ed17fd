"""The guest init (engitor/guest/init.c) and the configuration file it reads."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engitor.image import cc

GUEST_DIR = Path(__file__).resolve().parent.parent / "guest"
SOURCE = GUEST_DIR / "init.c"
CONFIG_PATH = "/.engitor/init"


def binary() -> Path:
    """The compiled init, building it on first use (cached by source hash)."""
    includes = tuple(p for p in sorted(GUEST_DIR.glob("*.[ch]")) if p != SOURCE)
    return cc.compile_static(SOURCE, includes)


def escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n")


@dataclass(frozen=True)
class InitConfig:
    """What /.engitor/init tells the guest init; `render` gives its exact bytes."""

    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()
    workdir: str = "/"
    hostname: str = "engitor"
    modules: tuple[str, ...] = ()  # guest paths, load order
    addr: str | None = "10.0.2.15/24"
    gateway: str | None = "10.0.2.2"
    stop_timeout: int = 10
    probe: bool = False
    network: str = "static"  # or "dhcp": the address from a DHCP server

    def render(self) -> bytes:
        lines = [f"arg {escape(a)}" for a in self.argv]
        lines += [f"env {escape(k)}={escape(v)}" for k, v in self.env]
        lines += [f"module {escape(m)}" for m in self.modules]
        lines += [f"cwd {escape(self.workdir)}", f"hostname {escape(self.hostname)}",
                  f"stop_timeout {self.stop_timeout}"]
        if self.addr:
            lines.append(f"addr {self.addr}")
        if self.gateway:
            lines.append(f"gateway {self.gateway}")
        if self.network != "static":
            lines.append(f"network {self.network}")
        if self.probe:
            lines.append("probe 1")
        return ("\n".join(lines) + "\n").encode()
