"""What maintainer scripts would make, made from the unpacked files: the CA trust store."""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
from pathlib import Path

import pytest

from engitor.packages import triggers

HOST_CERTS = Path("/usr/share/ca-certificates/mozilla")


def _two_certs() -> list[Path]:
    certs = sorted(HOST_CERTS.glob("*.crt"))[:2]
    if len(certs) < 2:
        pytest.skip("this host has no ca-certificates to take real certificates from")
    return certs


def test_the_bundle_holds_every_certificate_in_order_each_ending_in_a_newline(tmp_path):
    a, b = _two_certs()
    share = tmp_path / "usr/share/ca-certificates"
    (share / "mozilla").mkdir(parents=True)
    (share / "local").mkdir()
    # update-ca-certificates adds a newline to a certificate without one (Debian #635570).
    (share / "mozilla/B, Trust (Root).crt").write_bytes(b.read_bytes().rstrip(b"\n"))
    (share / "local/A.crt").write_bytes(a.read_bytes())
    made = triggers.run(tmp_path)
    bundle = tmp_path / "etc/ssl/certs/ca-certificates.crt"
    assert bundle.read_bytes() == a.read_bytes() + b.read_bytes().rstrip(b"\n") + b"\n"
    hashes = {}
    for name, cert in (("A.pem", a), ("B__Trust_=Root=.pem", b)):
        hashes[subprocess.run(["openssl", "x509", "-noout", "-subject_hash", "-in", str(cert)],
                              capture_output=True, text=True, check=True).stdout.strip()] = name
    assert made == ["/etc/ssl/certs/ca-certificates.crt", "/etc/ssl/certs/A.pem",
                    "/etc/ssl/certs/B__Trust_=Root=.pem",
                    *sorted(f"/etc/ssl/certs/{h}.0" for h in hashes)]
    # OpenSSL's lookup by folder: HASH.0 names the certificate's NAME.pem.
    for h, name in hashes.items():
        assert os.readlink(tmp_path / f"etc/ssl/certs/{h}.0") == name
    # The postinst's link names, relative so they stay inside the image.
    link = tmp_path / "etc/ssl/certs/B__Trust_=Root=.pem"
    assert os.readlink(link) == "../../../usr/share/ca-certificates/mozilla/B, Trust (Root).crt"
    assert link.read_bytes() == (share / "mozilla/B, Trust (Root).crt").read_bytes()
    stats = ssl.create_default_context(cafile=bundle).cert_store_stats()
    assert stats["x509_ca"] == 2


def test_making_it_again_gives_the_same_bytes(tmp_path):
    a, b = _two_certs()
    share = tmp_path / "usr/share/ca-certificates/mozilla"
    share.mkdir(parents=True)
    for cert in (a, b):
        (share / cert.name).write_bytes(cert.read_bytes())
    first = triggers.run(tmp_path)
    before = (tmp_path / triggers.CA_BUNDLE).read_bytes()
    assert triggers.run(tmp_path) == first
    assert (tmp_path / triggers.CA_BUNDLE).read_bytes() == before


def test_a_root_without_ca_certificates_gets_nothing(tmp_path):
    (tmp_path / "usr/share/ca-certificates").mkdir(parents=True)
    assert triggers.run(tmp_path) == []
    assert not (tmp_path / "etc").exists()


def _jdk_tree(root: Path, certs: list[Path]) -> None:
    share = root / "usr/share/ca-certificates/mozilla"
    share.mkdir(parents=True)
    for cert in certs:
        (share / cert.name).write_bytes(cert.read_bytes())
    security = root / "usr/lib/jvm/java-17-openjdk-amd64/lib/security"
    security.mkdir(parents=True)
    os.symlink("../../../../../../etc/ssl/certs/java/cacerts", security / "cacerts")


def test_the_java_trust_store_is_a_key_store_keytool_reads_and_verifies(tmp_path):
    keytool = shutil.which("keytool")
    assert keytool, "the tests need a JDK (openjdk-17-jdk-headless, in the Makefile's APT_TEST)"
    certs = sorted(HOST_CERTS.glob("*.crt"))
    if len(certs) < 3:
        pytest.skip("this host has no ca-certificates to take real certificates from")
    # A name with non-ASCII letters exercises Java's modified UTF-8 in the aliases.
    certs = certs[:3] + [c for c in certs if not c.name.isascii()][:1]
    _jdk_tree(tmp_path, certs)
    assert "/etc/ssl/certs/java/cacerts" in triggers.run(tmp_path)
    store = tmp_path / "usr/lib/jvm/java-17-openjdk-amd64/lib/security/cacerts"
    # With the password keytool checks the store's integrity digest.
    proc = subprocess.run([keytool, "-list", "-rfc", "-keystore", str(store), "-storepass",
                           "changeit"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"Your keystore contains {len(certs)} entries" in proc.stdout
    for cert in certs:
        alias = "debian:" + cert.name[:-4].replace(" ", "_").lower() + ".pem"
        assert f"Alias name: {alias}\n" in proc.stdout, alias
        assert "trustedCertEntry" in proc.stdout
    pems = {"".join(c.read_text().split()) for c in certs}
    listed = {"".join(b.split("-----END")[0].split()) + "-----ENDCERTIFICATE-----"
              for b in proc.stdout.split("-----BEGIN")[1:]}
    assert {"-----BEGIN" + b for b in listed} == pems


def test_no_java_trust_store_without_a_jdk_linking_to_it(tmp_path):
    a, b = _two_certs()
    share = tmp_path / "usr/share/ca-certificates/mozilla"
    share.mkdir(parents=True)
    (share / a.name).write_bytes(a.read_bytes())
    assert "/etc/ssl/certs/java/cacerts" not in triggers.run(tmp_path)
    assert not (tmp_path / "etc/ssl/certs/java").exists()


def test_a_file_that_is_no_certificate_stays_out_of_the_java_store(tmp_path):
    a, b = _two_certs()
    _jdk_tree(tmp_path, [a, b])
    (tmp_path / "usr/share/ca-certificates/mozilla/broken.crt").write_text("not a certificate\n")
    triggers.run(tmp_path)
    store = (tmp_path / triggers.JAVA_CACERTS).read_bytes()
    assert int.from_bytes(store[8:12], "big") == 2  # the entry count after magic and version
