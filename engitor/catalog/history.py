"""A name's builds, newest first, from its log (reflog.py); and where `~N` points."""

from __future__ import annotations

from dataclasses import dataclass

from engitor import reflog, store
from engitor.catalog import diff, index
from engitor.errors import UserError, did_you_mean


@dataclass(frozen=True)
class Step:
    n: int  # ~n: 0 is where the name points now
    id: str
    time: float
    why: str
    image: store.StoredImage | None  # None when pruned since


def steps(name: str) -> list[Step]:
    """The images `name` pointed at, newest first (a name removed by rmi has an empty head)."""
    entries = [e for e in reflog.read(name) if e.new]
    current = store.read_pointer("tags", name)
    if current and (not entries or entries[-1].new != current):
        # Tagged before names had logs: the tag itself is the one known build.
        image = store.get(current)
        made = float(image.manifest.get("created", 0)) if image else 0.0
        entries.append(reflog.Entry(made, None, current, "build"))
    out = []
    for n, e in enumerate(reversed(entries)):
        assert e.new is not None
        out.append(Step(n, e.new, e.time, e.why, store.get(e.new)))
    return out


def of(name: str) -> list[Step]:
    found = steps(name)
    if not found:
        known = set(store.tags()) | set(reflog.names())
        raise UserError(f"no image named {name!r} has a history",
                        hint=did_you_mean(name, known) or "see 'engitor images'")
    return found


def changes(newer: Step, older: Step | None) -> str:
    """'+3 files, 1 changed' against the build before; what can be said when one is gone."""
    if older is None:
        return "first build"
    if newer.image is None or older.image is None:
        return "(pruned)"
    if newer.id == older.id:
        return "no change"
    return diff.summary(diff.files(index.files(older.image), index.files(newer.image)))


def pick(name: str, ref: str | None) -> store.StoredImage:
    """What `rollback NAME [ID|~N]` points the name at (default ~1, the build before)."""
    found = of(name)
    ref = ref or "~1"
    if ref.startswith("~"):
        if not ref[1:].isdigit():
            raise UserError(f"{ref!r} is not ~N", hint="~1 is the build before, ~2 the one before")
        n = int(ref[1:])
        if n >= len(found):
            raise UserError(f"{name} has {len(found)} build{'s' if len(found) != 1 else ''} in "
                            f"its history; {ref} goes past the first",
                            hint=f"see 'engitor history {name}'")
        step = found[n]
        if step.image is None:
            raise UserError(f"image {step.id[:12]} ({name}{ref}) was pruned",
                            hint=f"see 'engitor history {name}'")
        return step.image
    return store.resolve(ref)
