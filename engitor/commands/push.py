"""engitor push IMAGE REF: the image as a KubeVirt containerDisk, pushed to an OCI registry."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from engitor import store
from engitor.commands import common
from engitor.export import oci, registry


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("push", help="push an image as a containerDisk to an OCI registry",
                       description="Export IMAGE as a qcow2 disk inside a KubeVirt "
                                   "containerDisk (an OCI image) and push it to REF.")
    p.add_argument("image", metavar="IMAGE", help="image name or id")
    p.add_argument("ref", metavar="REF", help="REGISTRY/PATH[:TAG], e.g. 127.0.0.1:5000/web:1")
    p.add_argument("--tls-verify", choices=("true", "false"), default="true",
                   help="verify the registry's TLS certificate (false for a plain-HTTP "
                        "registry)")
    p.add_argument("--authfile", type=Path, metavar="FILE",
                   help="containers auth file (default: the usual places skopeo reads)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    ref = registry.parse_reference(args.ref)
    stored = store.resolve(args.image)
    name = stored.manifest.get("name") or args.image
    registry.check_reachable(ref)
    with tempfile.TemporaryDirectory(prefix="engitor-push-") as tmp:
        layout = Path(tmp) / "layout"
        manifest = oci.containerdisk(stored, layout, name=name, tag=ref.tag, log=common.say)
        registry.push(layout, ref.tag, ref, tls_verify=args.tls_verify == "true",
                      authfile=args.authfile)
    common.say(f"pushed {stored.short} to {ref} ({manifest.digest})")
    print(f"{ref}@{manifest.digest}")
    return 0
