"""What other engines need to run an image, as plain data: a KubeVirt VirtualMachine with a
Service for its ports, and a Nomad job for Nomad's QEMU driver.

Pure functions of a `Deployment` (what the image needs: its name, memory, CPUs, ports, disk);
the CLI prints them as YAML (Kubernetes) or JSON (Nomad's API format). The KubeVirt output is
validated in the tests against KubeVirt's own published OpenAPI schema.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from engitor.recipe.model import MiB, Port

# UEFI firmware (KubeVirt boots containerDisks with OVMF when asked, SeaBIOS by default) needs
# about 256 MiB: OVMF fails below ~160 MiB (measured: 128 MiB does not boot).
FIRMWARE_MIN_MEMORY = 256 * MiB
_DNS_LABEL = re.compile(r"[^a-z0-9-]+")


@dataclass(frozen=True)
class Deployment:
    name: str
    memory: int  # bytes
    cpus: int
    ports: tuple[Port, ...]
    disk_image: str  # containerDisk reference (KubeVirt) or disk URL/path (Nomad)
    stop_timeout: int = 10
    image_id: str = ""


def dns_label(name: str) -> str:
    """A name Kubernetes accepts (RFC 1123 label: lowercase alphanumerics and '-', ≤ 63)."""
    label = _DNS_LABEL.sub("-", name.lower()).strip("-")[:63].strip("-")
    return label or "engitor-app"


def _mebibytes(size: int) -> str:
    return f"{max(size, MiB) // MiB}Mi"


def _labels(d: Deployment) -> dict[str, str]:
    return {"app.kubernetes.io/name": dns_label(d.name), "app.kubernetes.io/managed-by": "engitor"}


def _metadata(d: Deployment, name: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": _labels(d)}
    if d.image_id:  # label values stop at 63 characters; annotations hold the whole id
        meta["annotations"] = {"engitor.dev/image-id": d.image_id}
    return meta


def _vm_interfaces(d: Deployment) -> list[dict[str, Any]]:
    ports = [{"name": f"{p.proto.value}-{p.guest}", "port": p.guest,
              "protocol": p.proto.value.upper()} for p in d.ports]
    iface: dict[str, Any] = {"name": "default", "masquerade": {}}
    if ports:
        iface["ports"] = ports
    return [iface]


def kubevirt_vm(d: Deployment) -> dict[str, Any]:
    """A KubeVirt VirtualMachine booting the containerDisk (its guest gets its address by DHCP
    from KubeVirt's masquerade network)."""
    name = dns_label(d.name)
    memory = _mebibytes(d.memory)
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachine",
        "metadata": _metadata(d, name),
        "spec": {
            "runStrategy": "Always",
            "template": {
                "metadata": {"labels": {**_labels(d), "kubevirt.io/domain": name}},
                "spec": {
                    "domain": {
                        "cpu": {"cores": d.cpus},
                        "memory": {"guest": memory},
                        "resources": {"requests": {"memory": memory}},
                        "devices": {
                            "disks": [{"name": "rootdisk", "disk": {"bus": "virtio"}}],
                            "interfaces": _vm_interfaces(d),
                            "rng": {},
                        },
                    },
                    "networks": [{"name": "default", "pod": {}}],
                    "terminationGracePeriodSeconds": d.stop_timeout,
                    "volumes": [{"name": "rootdisk",
                                 "containerDisk": {"image": d.disk_image}}],
                },
            },
        },
    }


def kubevirt_service(d: Deployment) -> dict[str, Any] | None:
    """A ClusterIP Service selecting the VM's pod, one port per forwarded guest port."""
    if not d.ports:
        return None
    name = dns_label(d.name)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(d, name),
        "spec": {
            "selector": {"kubevirt.io/domain": name},
            "ports": [{"name": f"{p.proto.value}-{p.guest}", "port": p.host or p.guest,
                       "targetPort": p.guest, "protocol": p.proto.value.upper()}
                      for p in d.ports],
        },
    }


def kubevirt(d: Deployment) -> list[dict[str, Any]]:
    docs = [kubevirt_vm(d)]
    service = kubevirt_service(d)
    if service is not None:
        docs.append(service)
    return docs


def nomad_job(d: Deployment, *, datacenters: tuple[str, ...] = ("dc1",)) -> dict[str, Any]:
    """A Nomad job (the JSON form of `nomad job run -json` / the /v1/jobs API) running the qcow2
    disk under Nomad's qemu driver, with its ports mapped through Nomad's network block."""
    name = dns_label(d.name)
    port_labels = {p: f"{p.proto.value}_{p.guest}" for p in d.ports}
    return {"Job": {
        "ID": name, "Name": name, "Type": "service", "Datacenters": list(datacenters),
        "TaskGroups": [{
            "Name": name, "Count": 1,
            "Networks": [{"DynamicPorts": [{"Label": label, "To": p.guest}
                                           for p, label in port_labels.items()]}],
            "Tasks": [{
                "Name": name, "Driver": "qemu",
                "Artifacts": [{"GetterSource": d.disk_image, "RelativeDest": "local/"}],
                "Config": {
                    "image_path": f"local/{d.disk_image.rsplit('/', 1)[-1]}",
                    "accelerator": "kvm",
                    "graceful_shutdown": True,
                    "args": ["-smp", str(d.cpus), "-nographic"],
                    "port_map": [{label: p.guest} for p, label in port_labels.items()],
                },
                "KillTimeout": d.stop_timeout * 1_000_000_000,
                "Resources": {"CPU": 500 * d.cpus, "MemoryMB": max(d.memory // MiB, 1)},
            }],
        }],
    }}
