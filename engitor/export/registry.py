"""Pushing a containerDisk to an OCI registry with skopeo.

skopeo (Debian's, from the containers project) speaks the registry protocol, reads the usual
containers auth file (`--authfile`, else $REGISTRY_AUTH_FILE, ${XDG_RUNTIME_DIR}/containers/
auth.json, ~/.docker/config.json) and copies an OCI layout as it is, digests unchanged. A
registry that does not answer is found with one short TCP connect first, so the user waits
seconds for a clear line instead of skopeo's retries.
"""

from __future__ import annotations

import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

from engitor.errors import UserError
from engitor.proc import run

CONNECT_TIMEOUT = 3.0
COMMAND_TIMEOUT = "300s"


@dataclass(frozen=True)
class Reference:
    """`HOST[:PORT]/PATH[:TAG]` as a registry names an image."""

    host: str
    port: int | None
    path: str
    tag: str

    def __str__(self) -> str:
        where = f"{self.host}:{self.port}" if self.port else self.host
        return f"{where}/{self.path}:{self.tag}"


def parse_reference(ref: str) -> Reference:
    """Parse a push destination; `docker://` is accepted and dropped."""
    text = ref.removeprefix("docker://")
    where, slash, rest = text.partition("/")
    if not slash or not rest or ("." not in where and ":" not in where and where != "localhost"):
        raise UserError(f"{ref}: not a registry reference",
                        hint="write REGISTRY/PATH[:TAG], e.g. 127.0.0.1:5000/web:1 or "
                             "quay.io/me/web:latest")
    host, colon, port_text = where.partition(":")
    if colon and not port_text.isdigit():
        raise UserError(f"{ref}: the registry port {port_text!r} is not a number",
                        hint="write HOST:PORT/PATH[:TAG]")
    path, _, tag = rest.partition(":")
    if "@" in rest:
        raise UserError(f"{ref}: pushing to a digest is not possible", hint="name a tag")
    return Reference(host, int(port_text) if colon else None, path, tag or "latest")


def check_reachable(ref: Reference, timeout: float = CONNECT_TIMEOUT) -> None:
    port = ref.port or 443
    try:
        with socket.create_connection((ref.host, port), timeout=timeout):
            pass
    except OSError as e:
        reason = "timed out" if isinstance(e, TimeoutError) else (e.strerror or str(e))
        raise UserError(f"registry {ref.host}:{port} does not answer ({reason})",
                        hint="is the registry running and the address right?") from None


def skopeo_copy_argv(layout: Path, tag: str, ref: Reference, *, tls_verify: bool,
                     authfile: Path | None = None) -> list[str]:
    argv = ["skopeo", "--command-timeout", COMMAND_TIMEOUT, "copy", "--quiet",
            f"--dest-tls-verify={'true' if tls_verify else 'false'}"]
    if authfile is not None:
        argv += ["--dest-authfile", str(authfile)]
    return [*argv, f"oci:{layout}:{tag}", f"docker://{ref}"]


def push(layout: Path, tag: str, ref: Reference, *, tls_verify: bool = True,
         authfile: Path | None = None) -> None:
    if not shutil.which("skopeo"):
        raise UserError("skopeo is not installed", hint="apt-get install skopeo")
    check_reachable(ref)
    argv = skopeo_copy_argv(layout, tag, ref, tls_verify=tls_verify, authfile=authfile)
    proc = run(argv, hint="apt-get install skopeo")
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        last = lines[-1] if lines else f"skopeo exited with {proc.returncode}"
        hint = ("for a registry without TLS add --tls-verify=false"
                if "http response to https client" in last.lower() or "x509" in last.lower()
                else "check the reference and your registry credentials")
        raise UserError(f"push to {ref} failed: {last.removeprefix('time=')}", hint=hint)
