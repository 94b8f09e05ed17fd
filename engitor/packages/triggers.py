"""What some packages' maintainer scripts make, made here from the unpacked files instead.

Maintainer scripts never run (they expect a booted, installed Debian system), but a few of them
produce files a runtime reads. Each function here rebuilds one such product from the merged
root alone, deterministically, and returns the guest paths it wrote.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import struct
from pathlib import Path

from engitor import proc

CA_SHARE = "usr/share/ca-certificates"
CA_CERTS = "etc/ssl/certs"
CA_BUNDLE = "etc/ssl/certs/ca-certificates.crt"
HASH_LINK = re.compile(r"[0-9a-f]{8}\.r?[0-9]+")  # certificates' HASH.N, CRLs' HASH.rN


def _ca_files(root: Path) -> list[Path]:
    """The certificates ca-certificates ships, in the order update-ca-certificates adds them:
    that of ca-certificates.conf, which the postinst writes sorted (the order does not change
    what is trusted)."""
    share = root / CA_SHARE
    return sorted(p for p in share.rglob("*.crt") if p.is_file()) if share.is_dir() else []


def ca_certificates(root: Path, certs: list[Path]) -> list[str]:
    """The trust store ca-certificates' postinst makes with update-ca-certificates: every
    certificate under /usr/share/ca-certificates trusted (the package's default answer), one
    PEM bundle in /etc/ssl/certs (OpenSSL's default CA file, through /usr/lib/ssl/cert.pem) and
    a NAME.pem link per certificate, with OpenSSL's subject-hash links to those."""
    if not certs:
        return []
    out = root / CA_CERTS
    out.mkdir(parents=True, exist_ok=True)
    made = []
    chunks = []
    for cert in certs:
        text = cert.read_bytes()
        chunks.append(text if text.endswith(b"\n") else text + b"\n")
        link = out / (_pem_name(cert.name[:-len(".crt")]) + ".pem")
        if link.is_symlink() or link.exists():
            link.unlink()
        os.symlink(os.path.relpath(cert, out), link)
        made.append("/" + link.relative_to(root).as_posix())
    bundle = root / CA_BUNDLE
    if bundle.is_symlink() or bundle.exists():
        bundle.unlink()
    bundle.write_bytes(b"".join(chunks))
    bundle.chmod(0o644)
    return ["/" + CA_BUNDLE, *made, *_rehash(out)]


def _rehash(certs: Path) -> list[str]:
    """OpenSSL's subject-hash links (HASH.0 -> NAME.pem), for programs that look certificates
    up by folder rather than read the bundle; made, as update-ca-certificates does, by the
    host's `openssl rehash`. Without openssl on the host they are left out."""
    openssl = shutil.which("openssl")
    if openssl is None:
        return []
    # It names, on stderr, the bundle it skips for holding many certificates.
    done = proc.run([openssl, "rehash", str(certs)])
    if done.returncode != 0:
        return []
    return sorted("/" + CA_CERTS + "/" + name for name in os.listdir(certs)
                  if HASH_LINK.fullmatch(name))


JAVA_CACERTS = "etc/ssl/certs/java/cacerts"
JKS_MAGIC = 0xFEEDFEED
JKS_TRUSTED_CERT = 2
# Java's customary cacerts password; a trust store read with no password (the JDK's default)
# skips the integrity check, one read with this one passes it.
JKS_PASSWORD = "changeit"


def java_cacerts(root: Path, certs: list[Path]) -> list[str]:
    """The Java trust store ca-certificates-java's postinst makes by running Java: every
    certificate of the CA bundle as a trusted entry of a JKS key store at the path the JDK's
    lib/security/cacerts links to. Only made when a JDK in the root links there."""
    wanted = root / JAVA_CACERTS
    # The links dangle until the store exists, and Path.glob skips dangling names.
    jdk_links = [p for d in root.glob("usr/lib/jvm/*/lib/security") if (p := d / "cacerts")
                 .is_symlink() and Path(os.path.normpath(d / os.readlink(p))) == wanted]
    if not jdk_links:
        return []
    entries = []
    for cert in certs:
        # ca-certificates-java's alias: "debian:" and the /etc/ssl/certs link name; JKS keeps
        # aliases in lower case.
        alias = "debian:" + _pem_name(cert.name[:-len(".crt")]).lower() + ".pem"
        der = _der(cert.read_bytes())
        if der is not None:
            entries.append((alias, der))
    if not entries:
        return []
    wanted.parent.mkdir(parents=True, exist_ok=True)
    if wanted.is_symlink() or wanted.exists():
        wanted.unlink()
    wanted.write_bytes(jks_truststore(entries, JKS_PASSWORD))
    wanted.chmod(0o644)
    return ["/" + JAVA_CACERTS]


def jks_truststore(entries: list[tuple[str, bytes]], password: str) -> bytes:
    """A JKS key store (version 2) of trusted certificates: (alias, DER) pairs. Entries carry
    time 0 so the same certificates always give the same bytes."""
    out = bytearray(struct.pack(">III", JKS_MAGIC, 2, len(entries)))
    for alias, der in sorted(entries):
        out += struct.pack(">I", JKS_TRUSTED_CERT) + _java_utf(alias) + struct.pack(">q", 0)
        out += _java_utf("X.509") + struct.pack(">I", len(der)) + der
    # The key store's integrity digest, as the JDK computes it.
    digest = hashlib.sha1(password.encode("utf-16-be") + b"Mighty Aphrodite" + bytes(out))
    return bytes(out) + digest.digest()


def _java_utf(text: str) -> bytes:
    """DataOutputStream.writeUTF: a length, then modified UTF-8 over UTF-16 code units."""
    data = text.encode("utf-16-be")
    out = bytearray()
    for i in range(0, len(data), 2):
        unit = (data[i] << 8) | data[i + 1]
        if 0 < unit < 0x80:
            out.append(unit)
        elif unit < 0x800:
            out += bytes((0xC0 | unit >> 6, 0x80 | unit & 0x3F))
        else:
            out += bytes((0xE0 | unit >> 12, 0x80 | unit >> 6 & 0x3F, 0x80 | unit & 0x3F))
    return struct.pack(">H", len(out)) + bytes(out)


def _der(pem: bytes) -> bytes | None:
    """The first certificate of a PEM file, or None (keytool skips such a file too)."""
    begin, end = b"-----BEGIN CERTIFICATE-----", b"-----END CERTIFICATE-----"
    if begin not in pem or end not in pem:
        return None
    body = pem.split(begin, 1)[1].split(end, 1)[0]
    try:
        return base64.b64decode(b"".join(body.split()), validate=True)
    except ValueError:
        return None


def _pem_name(stem: str) -> str:
    """The postinst's spelling of a certificate's /etc/ssl/certs link name (without .pem)."""
    return stem.replace(" ", "_").replace("(", "=").replace(")", "=").replace(",", "_")


PYTHON_RE = re.compile(r"python(3\.\d+)")
# What py3compile (python3's postinst) compiles: the standard library and Debian's modules.
PYTHON_DIRS = ("usr/lib/python{v}", "usr/lib/python3/dist-packages")


def python_bytecode(root: Path) -> list[str]:
    """The bytecode python3's postinst makes with py3compile, as unchecked-hash .pyc files
    (PEP 552): they hold a hash of the source instead of its mtime, so the same source gives
    the same bytes on every build, and the interpreter trusts them without reading the source
    (first imports of a web framework: 5.0 s without bytecode, 1.3 s with, under TCG).
    Compiled by a host interpreter of the same version (the bytecode format is per minor
    version); without one, the image simply has no bytecode."""
    versions = sorted({m.group(1) for p in (root / "usr/bin").glob("python3.*")
                       if (m := PYTHON_RE.fullmatch(p.name))}) if (root / "usr/bin").is_dir() else []
    made: list[str] = []
    for version in versions:
        host = shutil.which(f"python{version}")
        dirs = [root / d.format(v=version) for d in PYTHON_DIRS]
        dirs = [d for d in dirs if d.is_dir()]
        if host is None or not dirs:
            continue
        before = set(root.rglob("*.pyc"))
        # One process, no workers: the order and the interpreter's state stay the same.
        # -I: the host's PYTHON* variables and site do not change what is compiled.
        proc.run([host, "-I", "-m", "compileall", "-q", "-j", "1",
                  "--invalidation-mode", "unchecked-hash",
                  # The code's file names are guest paths, not this build's folder.
                  "-s", str(root), "-p", "/", *map(str, dirs)],
                 env={"PYTHONHASHSEED": "0"})
        made += sorted("/" + p.relative_to(root).as_posix() for p in set(root.rglob("*.pyc")) - before)
    return made


def run(root: Path) -> list[str]:
    """Every product whose inputs are in `root`; the guest paths written."""
    certs = _ca_files(root)
    return ca_certificates(root, certs) + java_cacerts(root, certs) + python_bytecode(root)
