"""What some packages' maintainer scripts make, made here from the unpacked files instead.

Maintainer scripts never run (they expect a booted, installed Debian system), but a few of them
produce files a runtime reads. Each function here rebuilds one such product from the merged
root alone, deterministically, and returns the guest paths it wrote.
"""

from __future__ import annotations

import os
from pathlib import Path

CA_SHARE = "usr/share/ca-certificates"
CA_CERTS = "etc/ssl/certs"
CA_BUNDLE = "etc/ssl/certs/ca-certificates.crt"


def ca_certificates(root: Path) -> list[str]:
    """The trust store ca-certificates' postinst makes with update-ca-certificates: every
    certificate under /usr/share/ca-certificates trusted (the package's default answer), one
    PEM bundle in /etc/ssl/certs (OpenSSL's default CA file, through /usr/lib/ssl/cert.pem) and
    a NAME.pem link per certificate. OpenSSL's subject-hash links are not made: the bundle is
    what OpenSSL, Python, Ruby, PHP and Node.js read by default."""
    share = root / CA_SHARE
    if not share.is_dir():
        return []
    # update-ca-certificates adds them in the order of ca-certificates.conf, which the postinst
    # writes sorted; the bundle's order does not change what is trusted.
    certs = sorted(p.relative_to(share).as_posix()
                   for p in share.rglob("*.crt") if p.is_file())
    if not certs:
        return []
    out = root / CA_CERTS
    out.mkdir(parents=True, exist_ok=True)
    made = []
    chunks = []
    for rel in certs:
        text = (share / rel).read_bytes()
        chunks.append(text if text.endswith(b"\n") else text + b"\n")
        # The postinst's own spelling of a certificate's link name.
        stem = rel.rsplit("/", 1)[-1][:-len(".crt")]
        link = out / (stem.replace(" ", "_").replace("(", "=").replace(")", "=")
                      .replace(",", "_") + ".pem")
        if link.is_symlink() or link.exists():
            link.unlink()
        os.symlink(os.path.relpath(share / rel, out), link)
        made.append("/" + link.relative_to(root).as_posix())
    bundle = root / CA_BUNDLE
    if bundle.is_symlink() or bundle.exists():
        bundle.unlink()
    bundle.write_bytes(b"".join(chunks))
    bundle.chmod(0o644)
    return ["/" + CA_BUNDLE, *made]


def run(root: Path) -> list[str]:
    """Every product whose inputs are in `root`; the guest paths written."""
    return ca_certificates(root)
