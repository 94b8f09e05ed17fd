"""KubeVirt containerDisks as OCI images, written by hand: the layout spec is small.

A containerDisk is an OCI image of one layer holding `disk/NAME.qcow2`, owned by uid/gid 107
(the `qemu` user of KubeVirt's virt-launcher) with mode 0440; KubeVirt copies it out of the image
and boots it. The OCI layout (image-spec 1.0: `oci-layout`, `index.json`, `blobs/sha256/…`) is
simple enough that a few functions write it exactly, where umoci or buildah would each want a
rootfs, a runtime and their own clock. Everything is reproducible: numeric owners with empty
names, a fixed mtime, gzip without a timestamp, sorted JSON, no creation time in the config — so
one disk gives the same digests on every export, and a registry dedupes it.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

# KubeVirt's virt-launcher runs QEMU as uid/gid 107 and reads the disk read-only.
DISK_OWNER = 107
DISK_MODE = 0o440
DISK_DIR = "disk"
MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_ANNOTATION = "org.opencontainers.image.ref.name"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str  # "sha256:<hex>"
    size: int

    def to_json(self, annotations: dict[str, str] | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest,
                               "size": self.size}
        if annotations:
            out["annotations"] = annotations
        return out


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


class _Hashing(io.RawIOBase):
    """A write-only stream that hashes and counts what passes through to `inner`."""

    def __init__(self, inner: IO[bytes]):
        self.inner, self.sha, self.size = inner, hashlib.sha256(), 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self.sha.update(view)
        self.size += len(view)
        self.inner.write(view)
        return len(view)


def _tar_info(name: str, *, size: int = 0, directory: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.uid = info.gid = DISK_OWNER
    info.uname = info.gname = ""  # numeric owners only: names differ between hosts
    info.mtime = 0
    if directory:
        info.type, info.mode = tarfile.DIRTYPE, 0o555
    else:
        info.size, info.mode = size, DISK_MODE
    return info


def _write_layer(disk: Path, disk_name: str, out: IO[bytes]) -> tuple[str, str, int]:
    """Write the gzipped layer to `out`; (diff_id, digest, size) of the tar and the blob."""
    blob = _Hashing(out)
    with gzip.GzipFile(fileobj=blob, mode="wb", compresslevel=6, mtime=0, filename="") as gz:
        tar_stream = _Hashing(gz)  # type: ignore[arg-type]
        with tarfile.open(fileobj=tar_stream, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            tar.addfile(_tar_info(f"{DISK_DIR}/", directory=True))
            with disk.open("rb") as f:
                tar.addfile(_tar_info(f"{DISK_DIR}/{disk_name}", size=disk.stat().st_size), f)
    return (f"sha256:{tar_stream.sha.hexdigest()}", f"sha256:{blob.sha.hexdigest()}", blob.size)


class _Layout:
    """An OCI image layout directory being written: blobs by digest."""

    def __init__(self, root: Path):
        self.root = root
        (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)

    def blob_path(self, digest: str) -> Path:
        return self.root / "blobs" / "sha256" / digest.removeprefix("sha256:")

    def add_json(self, media_type: str, value: Any) -> Descriptor:
        data = _canonical(value)
        digest = f"sha256:{hashlib.sha256(data).hexdigest()}"
        self.blob_path(digest).write_bytes(data)
        return Descriptor(media_type, digest, len(data))

    def add_layer(self, disk: Path, disk_name: str) -> tuple[Descriptor, str]:
        tmp = self.root / "blobs" / "sha256" / ".layer.tmp"
        with tmp.open("wb") as f:
            diff_id, digest, size = _write_layer(disk, disk_name, f)
        os.replace(tmp, self.blob_path(digest))
        return Descriptor(MEDIA_LAYER, digest, size), diff_id


def write_layout(disk: Path, out: Path, *, disk_name: str, tag: str,
                 labels: dict[str, str] | None = None) -> Descriptor:
    """Write a containerDisk OCI layout for `disk` (a qcow2) into the new directory `out`;
    returns the manifest's descriptor."""
    layout = _Layout(out)
    layer, diff_id = layout.add_layer(disk, disk_name)
    config = layout.add_json(MEDIA_CONFIG, {
        "architecture": "amd64", "os": "linux",
        "config": {"Labels": dict(sorted((labels or {}).items()))},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    })
    manifest = layout.add_json(MEDIA_MANIFEST, {
        "schemaVersion": 2, "mediaType": MEDIA_MANIFEST,
        "config": config.to_json(), "layers": [layer.to_json()],
        "annotations": dict(sorted((labels or {}).items())),
    })
    (out / "oci-layout").write_bytes(_canonical({"imageLayoutVersion": "1.0.0"}))
    (out / "index.json").write_bytes(_canonical({
        "schemaVersion": 2,
        "manifests": [manifest.to_json({REF_ANNOTATION: tag})],
    }))
    return manifest


def _layout_files(root: Path) -> Iterator[Path]:
    yield from sorted(p for p in root.rglob("*") if p.is_file())


def write_archive(layout: Path, out: IO[bytes]) -> None:
    """The layout directory as one tar (skopeo's `oci-archive:`), reproducibly."""
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for path in _layout_files(layout):
            info = tarfile.TarInfo(path.relative_to(layout).as_posix())
            info.size, info.mode, info.mtime = path.stat().st_size, 0o644, 0
            info.uname = info.gname = ""
            with path.open("rb") as f:
                tar.addfile(info, f)


def read_disk(layout: Path, tag: str | None = None) -> tuple[str, bytes]:
    """(name, bytes) of the disk in a containerDisk layout — what KubeVirt would boot."""
    index = json.loads((layout / "index.json").read_text())
    manifests = index["manifests"]
    if tag is not None:
        manifests = [m for m in manifests if m.get("annotations", {}).get(REF_ANNOTATION) == tag]
    blobs = _Layout(layout)
    manifest = json.loads(blobs.blob_path(manifests[0]["digest"]).read_bytes())
    with gzip.open(blobs.blob_path(manifest["layers"][0]["digest"])) as gz, \
            tarfile.open(fileobj=gz, mode="r|") as tar:
        for member in tar:
            if member.isfile() and member.name.startswith(f"{DISK_DIR}/"):
                data = tar.extractfile(member)
                assert data is not None
                return member.name.removeprefix(f"{DISK_DIR}/"), data.read()
    raise ValueError(f"{layout}: no file under {DISK_DIR}/ in the image")


def copy_into(path: Path, dest: Path) -> None:
    """Move a finished layout or archive into place, replacing what was there."""
    if dest.is_dir() and not dest.is_symlink():
        shutil.rmtree(dest)
    elif dest.exists():
        dest.unlink()
    os.replace(path, dest)


def disk_name(image_name: str) -> str:
    """The qcow2's name under disk/: the image's name, made safe for a path."""
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in image_name).strip(".-")
    return f"{safe or 'disk'}.qcow2"


def containerdisk(image: Any, out: Path, *, name: str, tag: str = "latest",
                  log: Callable[[str], None] = lambda _: None) -> Descriptor:
    """Export the stored `image` as qcow2 and wrap it as a containerDisk: an OCI layout
    directory at `out`, or, when `out` ends in .tar, an OCI archive. Written beside `out` and
    renamed into place, so nothing half-written is left."""
    from engitor.export import Format, export

    with tempfile.TemporaryDirectory(prefix=".engitor-oci-", dir=out.parent) as tmp:
        work = Path(tmp)
        qcow2 = export(image, Format.QCOW2, work / "disk.qcow2", log=log)
        layout = work / "layout"
        labels = {"org.opencontainers.image.title": name, "dev.engitor.image": image.id}
        manifest = write_layout(qcow2, layout, disk_name=disk_name(name), tag=tag,
                                labels=labels)
        if out.suffix == ".tar":
            with (work / "layout.tar").open("wb") as f:
                write_archive(layout, f)
            os.replace(work / "layout.tar", out)
        else:
            copy_into(layout, out)
    return manifest
