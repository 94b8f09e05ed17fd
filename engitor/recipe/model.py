"""The one recipe model every front end lowers to; the builder reads nothing else.

Declared (`Image`, what the user wrote, validated and typed) is kept apart from what the build
resolves (`engitor.image.context.Context`: files found, closure computed, kernel pinned) and
from built (`engitor.store.StoredImage`: hashed and on disk).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from engitor.units import MiB as MiB  # (the model's unit of memory, for its users)

# The defaults the settings table (settings.SETTINGS) and this model share, said once.
DEFAULT_MEMORY = 256 * MiB
DEFAULT_KERNEL = "linux-image-cloud-amd64"
DEFAULT_NAMESERVERS = ("10.0.2.3",)  # QEMU user networking's DNS
DEFAULT_BOOT_TIMEOUT = 30
DEFAULT_STOP_TIMEOUT = 10


class Accel(enum.Enum):
    AUTO = "auto"
    KVM = "kvm"
    TCG = "tcg"


class Start(enum.Enum):
    """How a VM starts: `boot` boots the kernel every time; `snapshot` restores a VM saved at the
    point where the init is about to mount volumes and start the program (the first run boots
    and saves it; engitor/vm/snapshot.py)."""

    BOOT = "boot"
    SNAPSHOT = "snapshot"


class Network(enum.Enum):
    """How the guest gets its address: `auto` is static on engitor's own microvm (QEMU's user
    network accepts 10.0.2.15) and DHCP in exported disks (clouds and KubeVirt hand addresses
    out)."""

    AUTO = "auto"
    STATIC = "static"
    DHCP = "dhcp"

    def on_microvm(self) -> str:
        return "dhcp" if self is Network.DHCP else "static"


class Proto(enum.Enum):
    TCP = "tcp"
    UDP = "udp"


@dataclass(frozen=True, order=True)
class Port:
    """A forwarded port: host side (bound on `bind`) to guest side."""

    host: int
    guest: int
    proto: Proto = Proto.TCP
    bind: str = "127.0.0.1"

    def __str__(self) -> str:
        text = f"{self.host}:{self.guest}" if self.host != self.guest else str(self.host)
        if self.bind != "127.0.0.1":
            text = f"{self.bind}:{self.host}:{self.guest}"
        return text + ("/udp" if self.proto is Proto.UDP else "")


@dataclass(frozen=True)
class Hook:
    """A Lua function declared in a recipe, run later in the script scope.

    `call` is bound to the runtime that evaluated the recipe; `where` is its definition site.
    Hooks never take part in equality: two recipes that mean the same image are equal.
    """

    name: str
    where: str
    call: Callable[..., Any] = field(repr=False)


@dataclass(frozen=True)
class Image:
    """One image as declared. Field names are the setting names of `settings.SETTINGS`."""

    name: str
    program: str | None = None
    package: str | None = None
    debian: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    files: tuple[str, ...] = ()
    dirs: tuple[str, ...] = ()
    map: Mapping[str, str] = field(default_factory=dict)
    ports: tuple[Port, ...] = ()
    memory: int = DEFAULT_MEMORY
    cpus: int = 1
    accel: Accel = Accel.AUTO
    kernel: str = DEFAULT_KERNEL
    kernel_args: tuple[str, ...] = ()
    modules: tuple[str, ...] = ()
    hostname: str | None = None
    workdir: str = "/"
    user: str | None = None
    nameservers: tuple[str, ...] = DEFAULT_NAMESERVERS
    network: Network = Network.AUTO
    boot_timeout: int = DEFAULT_BOOT_TIMEOUT
    stop_timeout: int = DEFAULT_STOP_TIMEOUT
    start: Start = Start.BOOT
    volumes: Mapping[str, str] = field(default_factory=dict)  # guest path -> source
    # Not settings: where relative paths resolve, where the image was declared, and hooks.
    base_dir: Path = field(default_factory=Path.cwd)
    where: str = field(default="", compare=False)
    hooks: Mapping[str, Hook] = field(default_factory=dict, compare=False)

    def with_settings(self, **changes: Any) -> Image:
        return replace(self, **changes)

    @property
    def guest_hostname(self) -> str:
        return self.hostname or self.name


NOT_SETTINGS = frozenset({"name", "base_dir", "where", "hooks"})


def setting_fields() -> list[str]:
    return [f.name for f in fields(Image) if f.name not in NOT_SETTINGS]


@dataclass(frozen=True)
class Recipe:
    """What one recipe file (or a CLI invocation) declares: its images, in declaration order."""

    source: str
    images: tuple[Image, ...]

    def get(self, name: str) -> Image | None:
        return next((i for i in self.images if i.name == name), None)
