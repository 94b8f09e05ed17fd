"""What engitor hands other engines, checked as data: libvirt domain XML, the KubeVirt
VirtualMachine (against KubeVirt's published OpenAPI schema), the Nomad job, registry references
and the containerDisk OCI layout (read back by skopeo)."""

from __future__ import annotations

import copy
import gzip
import hashlib
import io
import json
import subprocess
import tarfile
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from engitor.errors import UserError
from engitor.export import libvirt, manifests, oci, registry
from engitor.recipe.model import MiB, Port, Proto

SCHEMA = Path(__file__).resolve().parent / "schemas" / "kubevirt-virtualmachine.json"
QEMU_NS = {"qemu": libvirt.QEMU_NS}


def _domain(boot: libvirt.Boot, tmp: Path) -> libvirt.Domain:
    return libvirt.Domain(name="engitor-web", memory=128 * MiB, cpus=2,
                          ports=(Port(18080, 8080), Port(5353, 53, Proto.UDP)),
                          console=tmp / "console.log", boot=boot, kernel=tmp / "kernel",
                          initrd=tmp / "initrd", cmdline="console=ttyS0 quiet",
                          disk=tmp / "disk.qcow2")


def test_domain_for_direct_kernel_boot(tmp_path: Path):
    root = ET.fromstring(libvirt.domain_xml(_domain(libvirt.Boot.KERNEL, tmp_path)))
    assert root.find("os/type").get("machine") == "microvm"
    assert root.findtext("os/kernel") == str(tmp_path / "kernel")
    assert root.findtext("os/cmdline") == "console=ttyS0 quiet"
    assert root.find("memory").text == "128" and root.find("memory").get("unit") == "MiB"
    assert root.findtext("vcpu") == "2"
    assert root.find("features/acpi") is not None  # graceful stop through the power button
    assert root.find("cpu").get("mode") == "maximum"  # TCG's max CPU, but no byte-wise copies
    assert root.find("cpu/feature[@name='erms']").get("policy") == "disable"
    assert root.find("devices/controller[@type='usb']").get("model") == "none"
    assert root.find("devices/memballoon").get("model") == "none"
    assert root.find("devices/disk") is None
    args = [a.get("value") for a in root.findall("qemu:commandline/qemu:arg", QEMU_NS)]
    assert args[:2] == ["-netdev", "user,id=n0,hostfwd=tcp:127.0.0.1:18080-:8080,"
                                   "hostfwd=udp:127.0.0.1:5353-:53"]
    assert "virtio-net-device,netdev=n0" in args and "virtio-rng-device,rng=rng0" in args


def test_domain_for_a_disk_under_uefi(tmp_path: Path):
    root = ET.fromstring(libvirt.domain_xml(_domain(libvirt.Boot.DISK, tmp_path)))
    assert root.find("os").get("firmware") == "efi"
    assert root.find("os/type").get("machine") == "q35"
    assert root.find("os/kernel") is None
    assert root.find("devices/disk/source").get("file") == str(tmp_path / "disk.qcow2")
    assert root.find("devices/disk/target").get("bus") == "virtio"
    args = [a.get("value") for a in root.findall("qemu:commandline/qemu:arg", QEMU_NS)]
    # The explicit slot: without it QEMU takes slot 1 and libvirt's PCIe root port fails.
    assert "virtio-net-pci,netdev=n0,bus=pcie.0,addr=0x9" in args


def _strict(schema: Any) -> Any:
    """KubeVirt's schema as the API server's strict field validation applies it: an object
    with declared properties takes no others (Kubernetes rejects unknown fields)."""
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


@pytest.fixture(scope="module")
def vm_validator() -> jsonschema.Draft4Validator:
    schema = _strict(json.loads(SCHEMA.read_text()))
    return jsonschema.Draft4Validator(schema)


def _deployment(**changes: Any) -> manifests.Deployment:
    base = manifests.Deployment(name="Web_App", memory=256 * MiB, cpus=2,
                                ports=(Port(8080, 80), Port(5353, 53, Proto.UDP)),
                                disk_image="127.0.0.1:5000/web:1", stop_timeout=15,
                                image_id="ab" * 32)
    return manifests.Deployment(**{**base.__dict__, **changes})


def test_kubevirt_vm_is_valid_against_kubevirts_schema(vm_validator):
    vm, service = manifests.kubevirt(_deployment())
    errors = sorted(vm_validator.iter_errors(vm), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors]
    spec = vm["spec"]["template"]["spec"]
    assert spec["volumes"][0]["containerDisk"]["image"] == "127.0.0.1:5000/web:1"
    assert spec["domain"]["memory"]["guest"] == "256Mi"
    assert spec["domain"]["cpu"]["cores"] == 2
    assert spec["terminationGracePeriodSeconds"] == 15
    assert vm["metadata"]["name"] == "web-app"  # an RFC 1123 name
    assert service["spec"]["selector"] == {"kubevirt.io/domain": "web-app"}
    assert [(p["port"], p["targetPort"], p["protocol"]) for p in service["spec"]["ports"]] == \
        [(8080, 80, "TCP"), (5353, 53, "UDP")]


def test_the_strict_schema_catches_a_wrong_field(vm_validator):
    vm = copy.deepcopy(manifests.kubevirt_vm(_deployment()))
    vm["spec"]["template"]["spec"]["domain"]["memroy"] = {"guest": "1Gi"}
    assert list(vm_validator.iter_errors(vm))
    vm = copy.deepcopy(manifests.kubevirt_vm(_deployment()))
    vm["spec"]["template"]["spec"]["domain"]["cpu"]["cores"] = "two"
    assert list(vm_validator.iter_errors(vm))


def test_no_ports_means_no_service():
    assert [d["kind"] for d in manifests.kubevirt(_deployment(ports=()))] == ["VirtualMachine"]


def test_dns_labels():
    assert manifests.dns_label("prög_1") == "pr-g-1"
    assert manifests.dns_label("...") == "engitor-app"
    assert len(manifests.dns_label("x" * 100)) == 63


def test_nomad_job():
    job = manifests.nomad_job(_deployment(disk_image="https://example.test/web.qcow2"))["Job"]
    task = job["TaskGroups"][0]["Tasks"][0]
    assert task["Driver"] == "qemu"
    assert task["Config"]["image_path"] == "local/web.qcow2"
    assert task["Config"]["port_map"] == [{"tcp_80": 80}, {"udp_53": 53}]
    assert task["Resources"]["MemoryMB"] == 256
    assert json.loads(json.dumps(job)) == job


@pytest.mark.parametrize("text, expected", [
    ("127.0.0.1:5000/web:1", ("127.0.0.1", 5000, "web", "1")),
    ("docker://localhost/team/web", ("localhost", None, "team/web", "latest")),
    ("quay.io/me/web:v2", ("quay.io", None, "me/web", "v2")),
])
def test_registry_references(text, expected):
    ref = registry.parse_reference(text)
    assert (ref.host, ref.port, ref.path, ref.tag) == expected


@pytest.mark.parametrize("text", ["web", "web:1", "127.0.0.1:x/web", "quay.io/me/web@sha256:ab"])
def test_bad_registry_references(text):
    with pytest.raises(UserError):
        registry.parse_reference(text)


@pytest.fixture(scope="module")
def qcow2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small real qcow2 with some content (the OCI code does not care what it boots)."""
    d = tmp_path_factory.mktemp("disk")
    raw = d / "disk.raw"
    raw.write_bytes(hashlib.sha256(b"engitor").digest() * 4096)
    subprocess.run(["qemu-img", "convert", "-O", "qcow2", str(raw), str(d / "disk.qcow2")],
                   check=True)
    return d / "disk.qcow2"


def _blob(layout: Path, digest: str) -> bytes:
    return (layout / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes()


def test_containerdisk_layout(qcow2: Path, tmp_path: Path):
    layout = tmp_path / "oci"
    desc = oci.write_layout(qcow2, layout, disk_name="web.qcow2", tag="1",
                            labels={"dev.engitor.image": "abc"})
    index = json.loads((layout / "index.json").read_text())
    assert index["manifests"][0]["digest"] == desc.digest
    assert index["manifests"][0]["annotations"][oci.REF_ANNOTATION] == "1"
    manifest = json.loads(_blob(layout, desc.digest))
    for d in (manifest["config"], *manifest["layers"]):  # every blob is what its digest says
        data = _blob(layout, d["digest"])
        assert (len(data), "sha256:" + hashlib.sha256(data).hexdigest()) == (d["size"], d["digest"])
    layer = gzip.decompress(_blob(layout, manifest["layers"][0]["digest"]))
    config = json.loads(_blob(layout, manifest["config"]["digest"]))
    assert config["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(layer).hexdigest()]
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        members = {m.name.rstrip("/"): m for m in tar.getmembers()}
        assert set(members) == {"disk", "disk/web.qcow2"}
        disk = members["disk/web.qcow2"]
        assert (disk.uid, disk.gid, disk.mode, disk.uname, disk.gname, disk.mtime) == \
            (107, 107, 0o440, "", "", 0)
        assert tar.extractfile(disk).read() == qcow2.read_bytes()
    assert oci.read_disk(layout, "1") == ("web.qcow2", qcow2.read_bytes())


def test_containerdisk_is_reproducible(qcow2: Path, tmp_path: Path):
    outputs = []
    for n in (1, 2):
        layout = tmp_path / f"oci{n}"
        oci.write_layout(qcow2, layout, disk_name="web.qcow2", tag="1")
        archive = io.BytesIO()
        oci.write_archive(layout, archive)
        outputs.append(archive.getvalue())
    assert outputs[0] == outputs[1]


def test_skopeo_reads_the_layout(qcow2: Path, tmp_path: Path):
    layout = tmp_path / "oci"
    desc = oci.write_layout(qcow2, layout, disk_name="web.qcow2", tag="1")
    info = json.loads(subprocess.run(["skopeo", "inspect", f"oci:{layout}:1"], check=True,
                                     capture_output=True, text=True).stdout)
    assert info["Digest"] == desc.digest
    assert info["Os"] == "linux" and info["Architecture"] == "amd64"
    archive = tmp_path / "oci.tar"
    with archive.open("wb") as f:
        oci.write_archive(layout, f)
    info = json.loads(subprocess.run(["skopeo", "inspect", f"oci-archive:{archive}:1"],
                                     check=True, capture_output=True, text=True).stdout)
    assert info["Digest"] == desc.digest
