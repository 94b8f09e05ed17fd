"""Readiness as the guest reports it: the listening sockets the init writes to its
virtio-serial port (report.log in the run folder; see engitor/guest/listen.c).

A forwarded port is ready when the program listens on it at an address the forward reaches
(anything but loopback: QEMU's user network delivers to 10.0.2.15). The host side of the
forward is no signal: QEMU accepts there while the guest still boots.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from engitor.recipe.model import Port, Proto

LISTEN_RE = re.compile(r"^listen uptime=(?P<uptime>[\d.]+)(?P<addrs>(?: \S+)*)\s*$")


@dataclass
class Listening:
    """The latest report, and when each port was first seen listening (guest uptime)."""

    addrs: list[str] = field(default_factory=list)
    reported: bool = False  # the channel spoke at least once
    first_seen: dict[int, float] = field(default_factory=dict)

    def feed(self, line: str) -> None:
        m = LISTEN_RE.match(line)
        if not m:
            return
        self.reported = True
        self.addrs = m.group("addrs").split()
        uptime = float(m.group("uptime"))
        for port in reachable_ports(self.addrs):
            self.first_seen.setdefault(port, uptime)

    def loopback_only(self, port: int) -> bool:
        """Listening on the port, but only on loopback: the forward cannot reach it."""
        return port not in reachable_ports(self.addrs) and \
            any(split(a)[1] == port for a in self.addrs)


def split(addr: str) -> tuple[str, int]:
    """'0.0.0.0:8080' or '[::]:8080' -> ('0.0.0.0', 8080)."""
    host, _, port = addr.rpartition(":")
    return host.strip("[]"), int(port)


def reachable_ports(addrs: list[str]) -> set[int]:
    out = set()
    for addr in addrs:
        try:
            host, port = split(addr)
            if not ipaddress.ip_address(host).is_loopback:
                out.add(port)
        except ValueError:
            continue
    return out


def waited_ports(ports: list[Port]) -> list[int]:
    """The guest ports whose listening means ready: the forwarded TCP ones."""
    return sorted({p.guest for p in ports if p.proto is Proto.TCP})


def is_ready(listening: Listening, ports: list[Port]) -> bool:
    return set(waited_ports(ports)) <= reachable_ports(listening.addrs)


def ready_uptime(listening: Listening, ports: list[Port]) -> float | None:
    """Guest uptime when the last of the waited ports started listening."""
    seen = [listening.first_seen.get(p) for p in waited_ports(ports)]
    if not seen or any(s is None for s in seen):
        return None
    return max(s for s in seen if s is not None)
