"""The SBOM of a python3 runtime image: valid SPDX 2.3 (checked with spdx-tools), listing
python3.11 with its Debian version, source package and licence, the kernel package, and the
program's own files; the same bytes every time.

Uses engitor's normal home, as tests/test_pkg_image.py does, so the package cache is shared
(the first run on a clean machine downloads python3's packages from Debian)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from spdx_tools.spdx.parser.parse_anything import parse_file
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document
from support import engitor

from engitor.catalog import sbom
from engitor.image import pipeline
from engitor.recipe.settings import make_image


@pytest.fixture(scope="module")
def pyimage(tmp_path_factory: pytest.TempPathFactory):
    app = tmp_path_factory.mktemp("sbom")
    (app / "app.py").write_text("print('hello from the SBOM test')\n")
    image = make_image("sbom-py", {"package": "python3", "files": ["app.py"],
                                   "args": ["app.py"]}, base_dir=app)
    return pipeline.build(image)


def test_the_sbom_of_a_python3_image_validates_and_lists_python311(pyimage, tmp_path: Path):
    out = tmp_path / "sbom.spdx.json"
    engitor("sbom", pyimage.id[:16], "-o", str(out), check=True)
    messages = validate_full_spdx_document(parse_file(str(out)))
    assert [m.validation_message for m in messages] == []

    doc = json.loads(out.read_text())
    assert doc["spdxVersion"] == "SPDX-2.3"
    assert doc["documentNamespace"].endswith(pyimage.id)
    packages = {p["name"]: p for p in doc["packages"]}
    recorded = {p["name"]: p for p in pyimage.manifest["packages"]}
    py = packages["python3.11"]
    assert py["versionInfo"] == recorded["python3.11"]["version"]
    assert py["versionInfo"].startswith("3.11.")
    assert py["sourceInfo"] == "built from Debian source package python3.11"
    assert any(r["referenceLocator"].startswith(f"pkg:deb/debian/python3.11@{py['versionInfo']}")
               for r in py["externalRefs"])
    # A DEP-5 copyright file gives a licence expression (libffi8's is machine-readable).
    assert "MIT" in packages["libffi8"]["licenseDeclared"]
    kernel = pyimage.manifest["kernel"]
    assert packages[kernel["package"]]["versionInfo"] == kernel["version"]
    files = {f["fileName"]: f for f in doc["files"]}
    assert "./app.py" in files and "./init" in files
    assert not any(name.startswith("./usr/lib/python3.11/") for name in files)  # a package's
    by_path = {f["path"]: f for f in pyimage.manifest["files"] if "sha256" in f}
    sha = {c["algorithm"]: c["checksumValue"] for c in files["./app.py"]["checksums"]}
    assert sha["SHA256"] == by_path["/app.py"]["sha256"]
    # Reproducible: the same image, the same bytes.
    assert sbom.render(pyimage) == out.read_text()
