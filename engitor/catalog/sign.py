"""Signing images with Ed25519, in minisign's formats.

What is signed is an image's SHA256SUMS (the sha256 of kernel, initrd, cmdline and
manifest.json, one line each, as sha256sum writes them), kept in the image's folder with its
signature SHA256SUMS.minisig. Verifying computes the sums again from the files, so a changed
byte in any of them fails even if SHA256SUMS was rewritten to match.

The formats are minisign's, so `minisign -Vm SHA256SUMS -p engitor.pub` checks an image
without engitor: the public key is base64("Ed" + key id + key); the signature file is an
untrusted comment, base64("ED" + key id + Ed25519 signature of the BLAKE2b-512 of the file),
a trusted comment (the image id, its names, the time) and a global signature over the first
signature and the trusted comment. The secret key is minisign's unencrypted form
(`minisign -G -W`): base64("Ed" + kdf "\\0\\0" + "B2" + 48 unused kdf bytes + key id +
64-byte secret + BLAKE2b-256 checksum), file mode 0600; protecting it is the home's job.
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

from engitor import cpio, home, store
from engitor.errors import UserError
from engitor.vm import initrd as unpacked_initrd

SIGNED = ("kernel", "initrd", "cmdline", "manifest.json")
SUMS = "SHA256SUMS"
SIG = "SHA256SUMS.minisig"


@dataclass(frozen=True)
class Key:
    key_id: bytes  # 8 bytes
    public: bytes  # 32
    secret: bytes | None = None  # 64: seed + public, as minisign and libsodium keep it

    def public_text(self) -> str:
        body = base64.b64encode(b"Ed" + self.key_id + self.public).decode()
        return f"untrusted comment: minisign public key {self.key_id[::-1].hex().upper()}\n{body}\n"

    def secret_text(self) -> str:
        assert self.secret is not None
        checksum = hashlib.blake2b(b"Ed" + self.key_id + self.secret, digest_size=32).digest()
        raw = b"Ed" + b"\0\0" + b"B2" + bytes(32 + 8 + 8) + self.key_id + self.secret + checksum
        return ("untrusted comment: minisign encrypted secret key (unencrypted: engitor)\n"
                + base64.b64encode(raw).decode() + "\n")


def default_key() -> Path:
    return home.home() / "keys" / "engitor.key"


def generate() -> Key:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    private = Ed25519PrivateKey.generate()
    seed = private.private_bytes_raw()
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return Key(os.urandom(8), public, seed + public)


def write_key(key: Key, path: Path) -> Path:
    """Write the secret key at `path` (0600) and the public one beside it (.pub)."""
    if path.exists():
        raise UserError(f"{path} exists", hint="remove it first, or give another --key")
    home.atomic_write(path, key.secret_text(), mode=0o600)
    pub = path.with_suffix(".pub")
    home.atomic_write(pub, key.public_text())
    return pub


def _payload(path: Path, what: str) -> bytes:
    try:
        lines = [ln for ln in path.read_text().splitlines() if ln and not ln.startswith("untrusted")]
        return base64.b64decode(lines[0], validate=True)
    except (OSError, IndexError, ValueError) as e:
        raise UserError(f"{path}: not a minisign {what} ({e.__class__.__name__})",
                        hint="give a key made by 'engitor keygen' or 'minisign -G -W'") from None


def read_secret(path: Path) -> Key:
    raw = _payload(path, "secret key")
    if len(raw) != 158 or raw[:2] != b"Ed":
        raise UserError(f"{path}: not a minisign Ed25519 secret key", hint="see 'engitor keygen'")
    if raw[2:4] != b"\0\0":
        raise UserError(f"{path}: the key is password-protected",
                        hint="engitor reads unencrypted keys (minisign -G -W)")
    key_id, secret, checksum = raw[54:62], raw[62:126], raw[126:158]
    # minisign 0.11 leaves the checksum of an unencrypted key zero; any other must match.
    if checksum != bytes(32) and \
            hashlib.blake2b(b"Ed" + key_id + secret, digest_size=32).digest() != checksum:
        raise UserError(f"{path}: the key's checksum is wrong", hint="is the file damaged?")
    return Key(key_id, secret[32:], secret)


def read_public(path: Path) -> Key:
    raw = _payload(path, "public key")
    if len(raw) != 42 or raw[:2] != b"Ed":
        raise UserError(f"{path}: not a minisign Ed25519 public key", hint="see 'engitor keygen'")
    return Key(raw[2:10], raw[10:42])


def sums(image: store.StoredImage) -> bytes:
    lines = []
    for name in SIGNED:
        with (image.path / name).open("rb") as f:
            lines.append(f"{hashlib.file_digest(f, 'sha256').hexdigest()}  {name}\n")
    return "".join(lines).encode()


def _sign_raw(secret: bytes, data: bytes) -> bytes:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.from_private_bytes(secret[:32]).sign(data)


def sign(image: store.StoredImage, key: Key, names: list[str]) -> Path:
    assert key.secret is not None
    data = sums(image)
    prehash = hashlib.blake2b(data, digest_size=64).digest()
    signature = _sign_raw(key.secret, prehash)
    trusted = (f"timestamp:{int(time.time())}\tfile:{SUMS}\timage:{image.id}"
               f"\tnames:{','.join(names)}")
    global_sig = _sign_raw(key.secret, signature + trusted.encode())
    text = (f"untrusted comment: signature from engitor secret key\n"
            f"{base64.b64encode(b'ED' + key.key_id + signature).decode()}\n"
            f"trusted comment: {trusted}\n{base64.b64encode(global_sig).decode()}\n")
    home.atomic_write(image.path / SUMS, data)
    home.atomic_write(image.path / SIG, text)
    return image.path / SIG


def verify(image: store.StoredImage, key: Key) -> str:
    """The trusted comment when the image is signed by `key` and unchanged; else UserError."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    sig_path = image.path / SIG
    if not sig_path.is_file():
        raise UserError(f"image {image.short} is not signed", hint=f"engitor sign {image.short}")
    lines = sig_path.read_text().splitlines()
    try:
        raw = base64.b64decode(lines[1], validate=True)
        trusted = lines[2].removeprefix("trusted comment: ")
        global_sig = base64.b64decode(lines[3], validate=True)
    except (IndexError, ValueError):
        raise UserError(f"image {image.short}: its signature file is damaged",
                        hint=f"sign it again: engitor sign {image.short}") from None
    if raw[:2] != b"ED" or raw[2:10] != key.key_id:
        raise UserError(f"image {image.short} is signed by another key "
                        f"({raw[2:10][::-1].hex().upper()})", hint="give its key with --pub")
    public = Ed25519PublicKey.from_public_bytes(key.public)
    prehash = hashlib.blake2b(sums(image), digest_size=64).digest()
    try:
        public.verify(raw[10:74], prehash)
        public.verify(global_sig, raw[10:74] + trusted.encode())
    except InvalidSignature:
        raise UserError(f"image {image.short} does not match its signature: it was changed "
                        "after signing", hint="rebuild it, or do not run it") from None
    _check_unpacked(image)
    return trusted


def _check_unpacked(image: store.StoredImage) -> None:
    """A TCG boot loads the initramfs unpacked (engitor/vm/initrd.py): that copy is not signed
    itself, so it must be the signed initrd unpacked, byte for byte."""
    copy = image.path / unpacked_initrd.UNPACKED_NAME
    if not copy.is_file():
        return
    with image.initrd.open("rb") as src:
        signed = hashlib.file_digest(cpio.unpacked_reader(src), "sha256").digest()
    with copy.open("rb") as f:
        if hashlib.file_digest(f, "sha256").digest() != signed:
            raise UserError(f"image {image.short}: {copy} is not its signed initrd unpacked",
                            hint=f"remove it (engitor unpacks the signed one again): rm {copy}")
