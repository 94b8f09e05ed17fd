"""engitor export TARGET --format F -o PATH: an image as a disk or EFI binary other engines boot."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from engitor.commands import common, target
from engitor.errors import UserError
from engitor.recipe.model import Image, MiB
from engitor.store import StoredImage

# KubeVirt's containerDisk: the qcow2 inside an OCI image (export/oci.py), not a disk format.
CONTAINERDISK = "containerdisk"


def add(sub: argparse._SubParsersAction) -> None:
    from engitor.export.formats import Format

    p = sub.add_parser("export", help="export an image as a bootable disk or UKI",
                       description="Write an image as a disk that UEFI and BIOS firmware boot "
                                   "(raw, qcow2, vhd, vmdk, gce) or as one EFI binary (uki). "
                                   "The same image always exports to the same bytes.")
    p.add_argument("target", metavar="TARGET",
                   help="an image name or id, or a program, recipe.lua[:IMAGE] or config to build")
    p.add_argument("-f", "--format", required=True, metavar="FORMAT",
                   help=f"one of {', '.join([*Format.names(), CONTAINERDISK])}")
    p.add_argument("-o", "--output", required=True, metavar="PATH",
                   help="the file to write (containerdisk: an OCI layout folder, or an OCI "
                        "archive when PATH ends in .tar)")
    p.add_argument("--sign", metavar="KEY", help="sign the UKI for Secure Boot with this key")
    p.add_argument("--cert", metavar="CERT", help="the certificate of --sign's key")
    common.add_image_flags(p)
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from engitor import export

    if args.format.lower() == CONTAINERDISK:
        return _containerdisk(args)
    fmt = export.parse_format(args.format)
    out = Path(args.output)
    export.check_output(out)
    if bool(args.sign) != bool(args.cert):
        raise UserError("--sign and --cert go together", hint="--sign KEY.pem --cert CERT.pem")
    signing = export.Signing(Path(args.sign), Path(args.cert)) if args.sign else None
    began = time.monotonic()
    image, stored = _for_export(args)
    export.export(stored, fmt, out, guest_memory=image.memory, signing=signing,
                  log=lambda line: common.say(f"export: {line}"))
    size = out.stat().st_size
    extra = f" (+ {export.secureboot.vars_path(out).name})" if signing else ""
    common.say(f"exported {stored.short} as {fmt.value} to {out}{extra}: "
               f"{size / MiB:.1f} MiB in {time.monotonic() - began:.1f} s")
    return 0


def _for_export(args: argparse.Namespace) -> tuple[Image, StoredImage]:
    """The target built, unless it names a kernel already known to be one an exported disk
    cannot boot: that is said before minutes of building, not after."""
    from engitor.export import guest
    from engitor.image import kernel

    image, found = target.resolve(args, build=False)
    if found is not None:
        return image, found
    known = kernel.pinned(image.kernel)
    if known is not None:
        guest.check_kernel(known.traits(), known.package)
    return image, target.build_image(image)


def _containerdisk(args: argparse.Namespace) -> int:
    from engitor.export import oci

    out = Path(args.output)
    if not out.parent.is_dir():
        raise UserError(f"output directory {out.parent} does not exist",
                        hint=f"create it first: mkdir -p {out.parent}")
    if out.exists() and out.suffix != ".tar":
        raise UserError(f"{out} exists", hint="name a new folder for the OCI layout")
    began = time.monotonic()
    image, stored = _for_export(args)
    name = image.name
    manifest = oci.containerdisk(stored, out, name=name,
                                 log=lambda line: common.say(f"export: {line}"))
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) if out.is_dir() \
        else out.stat().st_size
    common.say(f"exported {stored.short} as a containerDisk to {out} ({manifest.digest}): "
               f"{size / MiB:.1f} MiB in {time.monotonic() - began:.1f} s")
    return 0
