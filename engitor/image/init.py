"""The guest init (engitor/guest/init.c) and the configuration file it reads."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engitor import protocol, resources
from engitor.image import cc

SOURCE = Path(__file__).resolve().parent.parent / "guest" / "init.c"
CONFIG_PATH = protocol.CONFIG_PATH


def binary() -> Path:
    """The compiled init, building it on first use (cached by the hash of its sources and the
    protocol header it includes)."""
    return cc.compile_static(SOURCE, include_dirs=(resources.headers_dir(),))


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
    # The program's user: (uid, gid, supplementary gids); None runs it as root.
    run_as: tuple[int, int, tuple[int, ...]] | None = None
    bind_below_1024: bool = False  # keep CAP_NET_BIND_SERVICE after dropping root
    dirs: tuple[tuple[str, int, int, int], ...] = ()  # (path, mode, uid, gid) made at boot
    owners: tuple[tuple[str, int, int], ...] = ()  # (path, uid, gid) chowned at boot
    network: str = "static"  # or "dhcp": the address from a DHCP server
    modes: tuple[tuple[str, int, int, int], ...] = ()  # (path, mode, uid, gid) of existing files
    # (serial, guest path) of each ext4 disk, ("", guest path) of each tmpfs, mount order
    volumes: tuple[tuple[str, str], ...] = ()
    volume_owner: tuple[int, int] | None = None  # uid, gid that owns what volumes hold

    def _volume_lines(self) -> list[str]:
        lines = [f"volume {serial} {escape(path)}" if serial else f"tmpfs {escape(path)}"
                 for serial, path in self.volumes]
        if self.volume_owner is not None:
            lines.append(f"volume_owner {self.volume_owner[0]} {self.volume_owner[1]}")
        return lines

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
        lines += self._volume_lines()
        if self.probe:
            lines.append("probe 1")
        if self.run_as is not None:
            uid, gid, groups = self.run_as
            lines += [f"uid {uid}", f"gid {gid}", f"groups {','.join(map(str, groups))}"]
            if self.bind_below_1024:
                lines.append("bind_below_1024 1")
        lines += [f"dir {mode:o} {uid} {gid} {escape(path)}" for path, mode, uid, gid in self.dirs]
        lines += [f"chown {uid} {gid} {escape(path)}" for path, uid, gid in self.owners]
        lines += [f"chmod {mode:o} {uid} {gid} {escape(path)}"
                  for path, mode, uid, gid in self.modes]
        return ("\n".join(lines) + "\n").encode()
