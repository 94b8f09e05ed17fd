"""An image's software bill of materials, SPDX 2.3 JSON.

The document describes the image as one package that contains: the Debian packages it was
made from (name, version, source package, licence from the package's copyright file), the
kernel package, and the files that came from no package (the program, its host libraries,
the user's files, engitor's init) with their checksums. Reproducible: the creation time is the
image's, the namespace is derived from its id, everything is sorted.
"""

from __future__ import annotations

import hashlib
import json
import re
import stat
import time
from typing import Any

from engitor import __version__, cpio, store
from engitor.catalog import index

OWN_KINDS = ("program", "libraries", "files", "init", "")  # files no package brought


def _spdx_id(kind: str, name: str) -> str:
    return f"SPDXRef-{kind}-" + re.sub(r"[^A-Za-z0-9.-]+", "-", name).strip("-")


def _own_files(image: store.StoredImage, files: list[index.File]) -> list[dict[str, Any]]:
    """The image's own regular files with SHA1 (SPDX 2.3 requires it) and SHA256."""
    import zstandard

    wanted = {f.path: f for f in files if f.sha256 and f.kind in OWN_KINDS}
    raw = zstandard.ZstdDecompressor().decompressobj().decompress(image.initrd.read_bytes())
    out: list[dict[str, Any]] = []
    for path, mode, data in cpio.read_archive(raw):
        f = wanted.get(path)
        if f is None or not stat.S_ISREG(mode):
            continue
        out.append({
            "SPDXID": _spdx_id("File", path), "fileName": "." + path,
            "checksums": [{"algorithm": "SHA1", "checksumValue": hashlib.sha1(data).hexdigest()},
                          {"algorithm": "SHA256", "checksumValue": f.sha256}],
            "licenseConcluded": "NOASSERTION", "copyrightText": "NOASSERTION",
            "comment": f"put in the image as {f.kind or 'files'}, mode {f.mode:o}",
        })
    out.sort(key=lambda d: d["fileName"])
    seen: set[str] = set()
    for d in out:  # two paths may sanitise alike (/a+b, /a-b): ids must stay unique
        ident, n = d["SPDXID"], 1
        while d["SPDXID"] in seen:
            n += 1
            d["SPDXID"] = f"{ident}-{n}"
        seen.add(d["SPDXID"])
    return out


def _verification_code(files: list[dict[str, Any]]) -> str:
    sha1s = sorted(c["checksumValue"] for f in files for c in f["checksums"]
                   if c["algorithm"] == "SHA1")
    return hashlib.sha1("".join(sha1s).encode()).hexdigest()


def _deb(p: dict[str, Any]) -> dict[str, Any]:
    purl = f"pkg:deb/debian/{p['name']}@{p['version']}?arch={p.get('arch', 'amd64')}"
    out: dict[str, Any] = {
        "SPDXID": _spdx_id("Package-deb", p["name"]), "name": p["name"],
        "versionInfo": p["version"], "supplier": "Organization: Debian",
        "downloadLocation": "NOASSERTION", "filesAnalyzed": False,
        "licenseConcluded": "NOASSERTION", "licenseDeclared": p.get("license") or "NOASSERTION",
        "copyrightText": "NOASSERTION", "primaryPackagePurpose": "LIBRARY",
        "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                          "referenceLocator": purl}],
    }
    if p.get("source"):
        out["sourceInfo"] = f"built from Debian source package {p['source']}"
    return out


def _kernel(k: dict[str, Any]) -> dict[str, Any]:
    return {
        "SPDXID": _spdx_id("Package-kernel", k.get("package", "kernel")),
        "name": k.get("package", "kernel"), "versionInfo": k.get("version", "NOASSERTION"),
        "supplier": "Organization: Debian", "downloadLocation": "NOASSERTION",
        "filesAnalyzed": False, "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "GPL-2.0-only", "copyrightText": "NOASSERTION",
        "primaryPackagePurpose": "OPERATING-SYSTEM",
        "checksums": [{"algorithm": "SHA256", "checksumValue": k["sha256"]}] if k.get("sha256")
        else [],
        "comment": f"kernel release {k.get('release', '?')}; its sha256 is the .deb's",
    }


def document(image: store.StoredImage) -> dict[str, Any]:
    m = image.manifest
    files = index.files(image, m)
    own = _own_files(image, files)
    name = m.get("name") or image.short
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(float(m.get("created", 0))))
    top = {
        "SPDXID": "SPDXRef-Image", "name": name, "versionInfo": image.id,
        "downloadLocation": "NOASSERTION", "filesAnalyzed": True,
        "packageVerificationCode": {"packageVerificationCodeValue": _verification_code(own)},
        "licenseConcluded": "NOASSERTION", "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION", "primaryPackagePurpose": "APPLICATION",
        "comment": f"engitor image; program {m.get('program')}, cmdline {image.cmdline}",
    }
    debs = [_deb(p) for p in m.get("packages") or []]
    packages = [top, *debs, *([_kernel(m["kernel"])] if m.get("kernel") else [])]
    rels = [{"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES",
             "relatedSpdxElement": "SPDXRef-Image"}]
    rels += [{"spdxElementId": "SPDXRef-Image", "relationshipType": "CONTAINS",
              "relatedSpdxElement": p["SPDXID"]} for p in packages[1:]]
    rels += [{"spdxElementId": "SPDXRef-Image", "relationshipType": "CONTAINS",
              "relatedSpdxElement": f["SPDXID"]} for f in own]
    texts: dict[str, str] = {}
    for p in m.get("packages") or []:
        texts.update(p.get("license_texts") or {})
    doc: dict[str, Any] = {
        "spdxVersion": "SPDX-2.3", "dataLicense": "CC0-1.0", "SPDXID": "SPDXRef-DOCUMENT",
        "name": f"engitor-image-{name}",
        "documentNamespace": f"https://engitor.invalid/spdx/image/{image.id}",
        "creationInfo": {"created": created, "creators": [f"Tool: engitor-{__version__}"]},
        "packages": packages, "files": own, "relationships": rels,
    }
    if texts:
        doc["hasExtractedLicensingInfos"] = [
            {"licenseId": ref, "extractedText": text, "name": ref.removeprefix("LicenseRef-")}
            for ref, text in sorted(texts.items())]
    return doc


def render(image: store.StoredImage) -> str:
    return json.dumps(document(image), indent=2, sort_keys=True) + "\n"
