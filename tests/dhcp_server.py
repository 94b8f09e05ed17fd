"""A tiny DHCP server (and ARP responder) speaking raw Ethernet frames over QEMU's UDP socket
network backend (`-netdev socket,udp=…,localaddr=…`), for testing the guest's DHCP client with
lease times QEMU's own user network does not offer (it leases for a day)."""

from __future__ import annotations

import socket
import struct
import threading
from dataclasses import dataclass, field

BROADCAST_MAC = b"\xff" * 6
SERVER_MAC = bytes.fromhex("525400000001")
MAGIC = 0x63825363


def _ip_checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _ipv4_udp(src: bytes, dst: bytes, sport: int, dport: int, payload: bytes) -> bytes:
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload  # checksum optional
    head = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, src, dst)
    head = head[:10] + struct.pack("!H", _ip_checksum(head)) + head[12:]
    return head + udp


def _options(raw: bytes) -> dict[int, bytes]:
    out, i = {}, 0
    while i < len(raw) and raw[i] != 255:
        if raw[i] == 0:
            i += 1
            continue
        out[raw[i]] = raw[i + 2:i + 2 + raw[i + 1]]
        i += 2 + raw[i + 1]
    return out


@dataclass
class DHCPServer:
    """Leases `client_ip` for `lease` seconds, T1 at `t1`; records each request it answers."""

    port_in: int  # where QEMU sends the guest's frames
    port_out: int  # where QEMU listens for frames to the guest
    server_ip: str = "10.0.9.1"
    client_ip: str = "10.0.9.15"
    lease: int = 8
    t1: int = 3
    seen: list[str] = field(default_factory=list)  # "discover", "request", "renew"

    def __post_init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", self.port_in))
        self.sock.settimeout(0.2)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stopped.set()
        self.thread.join()
        self.sock.close()

    def _send(self, frame: bytes) -> None:
        self.sock.sendto(frame, ("127.0.0.1", self.port_out))

    def _serve(self) -> None:
        while not self.stopped.is_set():
            try:
                frame = self.sock.recv(4096)
            except TimeoutError:
                continue
            kind = frame[12:14]
            if kind == b"\x08\x06":
                self._arp(frame)
            elif kind == b"\x08\x00" and frame[23] == 17 and frame[36:38] == b"\x00\x43":
                self._dhcp(frame, frame[42:])

    def _arp(self, frame: bytes) -> None:
        op, sha, spa, _tha, tpa = struct.unpack("!6xH6s4s6s4s", frame[14:42])
        if op == 1 and tpa == socket.inet_aton(self.server_ip):
            reply = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 2, SERVER_MAC, tpa, sha, spa)
            self._send(sha + SERVER_MAC + b"\x08\x06" + reply)

    def _dhcp(self, frame: bytes, msg: bytes) -> None:
        xid, ciaddr, chaddr = msg[4:8], msg[12:16], msg[28:34]
        kind = _options(msg[240:]).get(53, b"\0")[0]
        if kind == 1:
            self.seen.append("discover")
            reply_type = 2
        elif kind == 3:
            self.seen.append("renew" if ciaddr != b"\0" * 4 else "request")
            reply_type = 5
        else:
            return
        server, client = socket.inet_aton(self.server_ip), socket.inet_aton(self.client_ip)
        opts = bytes([53, 1, reply_type, 54, 4]) + server
        opts += bytes([1, 4]) + socket.inet_aton("255.255.255.0") + bytes([3, 4]) + server
        opts += bytes([6, 4]) + server
        opts += bytes([51, 4]) + struct.pack("!I", self.lease)
        opts += bytes([58, 4]) + struct.pack("!I", self.t1) + b"\xff"
        body = struct.pack("!BBBB4sHH4s4s4s4s16s64s128sI", 2, 1, 6, 0, xid, 0, 0x8000, ciaddr,
                           client, server, b"\0" * 4, chaddr, b"", b"", MAGIC) + opts
        unicast = ciaddr != b"\0" * 4
        dst_ip = ciaddr if unicast else b"\xff" * 4
        ip = _ipv4_udp(server, dst_ip, 67, 68, body)
        self._send((chaddr if unicast else BROADCAST_MAC) + SERVER_MAC + b"\x08\x00" + ip)
