"""engitor manifest TARGET --for kubevirt|nomad: what another engine needs to run the image."""

from __future__ import annotations

import argparse
import json
import sys

import yaml

from engitor.commands import common, target
from engitor.export import manifests

ENGINES = ("kubevirt", "nomad")


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("manifest", help="print a KubeVirt VirtualMachine or a Nomad job",
                       description="Print what an engine needs to run TARGET: a KubeVirt "
                                   "VirtualMachine and Service (YAML), or a Nomad job (JSON, "
                                   "for Nomad's qemu driver).")
    p.add_argument("target", metavar="TARGET",
                   help="an image name or id, a program, recipe.lua[:IMAGE] or config")
    p.add_argument("--for", dest="engine", choices=ENGINES, required=True,
                   help="which engine")
    p.add_argument("--disk", metavar="REF",
                   help="the disk: a containerDisk reference for KubeVirt (default "
                        "NAME:latest, as 'engitor push' names it), a qcow2 URL for Nomad")
    common.add_image_flags(p)
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    image, stored = target.built(args)
    name = manifests.dns_label(image.name)
    disk = args.disk or (f"{name}:latest" if args.engine == "kubevirt" else f"{name}.qcow2")
    deployment = manifests.Deployment(
        name=image.name, memory=max(image.memory, manifests.FIRMWARE_MIN_MEMORY),
        cpus=image.cpus, ports=image.ports, disk_image=disk, stop_timeout=image.stop_timeout,
        image_id=stored.id)
    if args.engine == "kubevirt":
        yaml.safe_dump_all(manifests.kubevirt(deployment), sys.stdout, sort_keys=False)
    else:
        json.dump(manifests.nomad_job(deployment), sys.stdout, indent=2)
        print()
    return 0
