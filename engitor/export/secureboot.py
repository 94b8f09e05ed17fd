"""Secure Boot: the UKI signed with the user's key, and an OVMF variable store that trusts the
user's certificate, so a VM boots the disk with Secure Boot enforcing.

The store starts from Debian's OVMF_VARS_4M.ms.fd (Microsoft's and Debian's keys enrolled) and
gets the certificate added to db with virt-fw-vars (PyPI virt-firmware); it pairs with
OVMF_CODE_4M.secboot.fd on a q35 machine with SMM.
"""

from __future__ import annotations

import hashlib
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from engitor.errors import UserError
from engitor.export import tools

OVMF_VARS_MS = Path("/usr/share/OVMF/OVMF_VARS_4M.ms.fd")
OVMF_CODE_SECBOOT = Path("/usr/share/OVMF/OVMF_CODE_4M.secboot.fd")
VARS_SUFFIX = ".OVMF_VARS_4M.fd"


@dataclass(frozen=True)
class Signing:
    key: Path
    cert: Path

    def check(self) -> None:
        for what, path in (("key", self.key), ("certificate", self.cert)):
            if not path.is_file():
                raise UserError(f"signing {what} {path}: no such file",
                                hint="--sign KEY.pem --cert CERT.pem (PEM files, e.g. from "
                                     "'openssl req -x509 -newkey rsa:2048 -nodes')")
        tools.need("sbsign", "faketime")
        if not OVMF_VARS_MS.is_file():
            raise UserError(f"{OVMF_VARS_MS} is missing", hint="apt-get install ovmf")

    def owner_guid(self) -> str:
        """The signature owner recorded in db: derived from the certificate, so it repeats."""
        digest = hashlib.sha256(self.cert.read_bytes()).digest()
        return str(uuid.UUID(bytes=digest[:16], version=4))


def vars_path(out: Path) -> Path:
    return out.with_name(out.name + VARS_SUFFIX)


def sign_argv(efi: Path, out: Path, signing: Signing, epoch: int) -> list[str]:
    """sbsign under faketime: OpenSSL stamps the PKCS#7 signature with the signing time, which
    would make every signed export differ; the firmware does not check it (no trusted clock)."""
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch))
    return ["faketime", "-f", f"@{when}", "sbsign", "--key", str(signing.key),
            "--cert", str(signing.cert), "--output", str(out), str(efi)]


def sign(efi: Path, signing: Signing, epoch: int) -> None:
    """Sign `efi` in place (an Authenticode signature in the PE's certificate table)."""
    signed = efi.with_name(efi.name + ".signed")
    tools.run(sign_argv(efi, signed, signing, epoch), env={"TZ": "UTC"})
    signed.replace(efi)


def enroll(signing: Signing, out: Path) -> Path:
    """An OVMF variable store with the certificate in db and Secure Boot on, at `out`."""
    code = "import sys; from virt.firmware.vars import main; sys.exit(main())"
    try:
        import virt.firmware.vars  # noqa: F401  (present: the argv below runs it)
    except ImportError:
        raise UserError("virt-firmware is not installed; Secure Boot export needs virt-fw-vars",
                        hint="pip install virt-firmware") from None
    tools.run([sys.executable, "-c", code, "--input", OVMF_VARS_MS, "--add-db",
               signing.owner_guid(), signing.cert, "--secure-boot", "--output", out])
    return out
