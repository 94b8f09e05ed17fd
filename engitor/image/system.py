"""Layout steps for what a daemon expects of a Debian system: its users, its owned directories,
a /bin/sh when it runs shell commands. (Its packages' tree and users are resolved in plan.py.)

    add_file_libraries(ctx)  `files` that are dynamically linked bring their libraries
    add_shell(ctx)        Debian's dash as /bin/sh when the program's closure imports popen/system
    add_users(ctx)        /etc/passwd, group, shadow; the `user` setting; owned folders at boot

    add_locale_and_zone(ctx) C.UTF-8 and the TZ zone file when the environment asks for them

Each takes the pipeline's context; they sit between the closure and the init.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from engitor.cpio import Entry
from engitor.image import elf

if TYPE_CHECKING:
    from engitor.image.context import Context
    from engitor.packages.maintscripts import Actions

# Imported functions that run a command line through /bin/sh -c.
SHELL_FUNCTIONS = frozenset({"popen", "system", "posix_spawnp_sh", "wordexp"})
SH = "/bin/sh"
HOST_DASH = "/usr/bin/dash"


def imports_shell(paths: list[Path]) -> bool:
    """Whether any of these ELF objects imports a function that runs /bin/sh (libc itself
    defines them; an undefined dynamic symbol is an import)."""
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile
    from elftools.elf.sections import SymbolTableSection

    for path in paths:
        try:
            with path.open("rb") as f:
                elf = ELFFile(f)
                dynsym = elf.get_section_by_name(".dynsym")
                if not isinstance(dynsym, SymbolTableSection):
                    continue
                for sym in dynsym.iter_symbols():
                    if sym["st_shndx"] == "SHN_UNDEF" and sym.name in SHELL_FUNCTIONS:
                        return True
        except (OSError, ELFError):
            continue
    return False


def add_shell(ctx: Context) -> None:
    """A /bin/sh for programs that run shell commands: Debian's dash (it needs only libc,
    which the program's closure has)."""
    if SH in ctx.entries:
        return
    program = ctx.plan.program
    closure = elf.closure(program.guest, program.host, roots=list(ctx.roots))
    if not imports_shell(sorted(set(closure.objects.values()))):
        return
    dash = Path(HOST_DASH)
    if ctx.image.debian or not dash.is_file():  # a host program may use the host's (Debian's)
        from engitor.packages import debian

        root = debian.dash_root(ctx.log)  # bookworm's dash is /bin/dash, later ones /usr/bin
        dash = next(p for p in (root / "usr/bin/dash", root / "bin/dash") if p.exists()).resolve()
    ctx.add(Entry.file("/usr/bin/dash", source=dash, mode=0o755), "shell")
    bin_dir = ctx.entries.get("/bin")
    if bin_dir is not None and stat.S_ISLNK(bin_dir.mode):  # a merged /usr: /bin -> usr/bin
        ctx.add(Entry.symlink("/usr/bin/sh", "dash"), "shell")
    else:
        ctx.add(Entry.symlink(SH, "/usr/bin/dash"), "shell")
    ctx.log("shell: the program runs shell commands (popen/system): /bin/sh is Debian's dash")


def add_file_libraries(ctx: Context) -> None:
    """`files` that are dynamically linked programs bring their libraries, as the program does."""
    for path, e in sorted(ctx.entries.items()):
        if ctx.category.get(path) != "files" or e.source is None or not stat.S_ISREG(e.mode):
            continue
        with e.source.open("rb") as f:
            if f.read(4) != b"\x7fELF":
                continue
        closure = elf.closure(path, e.source, roots=list(ctx.roots))
        for guest, host in closure.objects.items():
            if guest not in ctx.entries:
                ctx.add(Entry.file(guest, source=host.resolve(), mode=0o755), "libraries")


LOCALE_VARS = ("LC_ALL", "LC_CTYPE", "LANG")
C_UTF8 = "/usr/lib/locale/C.utf8"


def add_locale_and_zone(ctx: Context) -> None:
    """What the environment asks for: LANG=C.UTF-8 (or LC_ALL, LC_CTYPE) brings glibc's C.UTF-8
    locale, TZ=Europe/Paris that zone's file, from the image's root (the host's, or its
    packages'). Debian images have both when their packages do (libc-bin, tzdata)."""
    env = {**ctx.env, **ctx.image.env}
    wants_utf8 = any(env.get(v, "").lower().replace("-", "") in ("c.utf8",) for v in LOCALE_VARS)
    if wants_utf8 and not any(p.startswith(C_UTF8 + "/") for p in ctx.entries):
        for root in ctx.roots:
            if (root / C_UTF8[1:]).is_dir():
                for host in sorted((root / C_UTF8[1:]).rglob("*")):
                    if host.is_file():
                        guest = "/" + host.relative_to(root).as_posix()
                        ctx.add(Entry.file(guest, source=host.resolve()), "locale")
                break
    zone = env.get("TZ", "").lstrip(":")
    path = f"/usr/share/zoneinfo/{zone}"
    if zone and ".." not in zone and path not in ctx.entries:
        for root in ctx.roots:
            host = root / path[1:]
            if host.is_file():
                ctx.add(Entry.file(path, source=host.resolve()), "locale")
                break


def add_users(ctx: Context) -> None:
    """/etc/passwd, group and shadow; the program's user; the folders made at boot (the
    image's own tmpfiles.d files count too)."""
    from engitor.packages import maintscripts, users

    actions = _with_image_tmpfiles(ctx, ctx.plan.source.actions or maintscripts.Actions())
    accounts = users.add(ctx.plan.accounts, actions)
    for path, (text, mode) in users.render(accounts).items():
        if path not in ctx.entries:  # the user's own files win
            ctx.add(Entry.file(path, data=text.encode(), mode=mode), "etc")
    extra = ctx.init_extra
    who = ctx.plan.run_as
    if who is not None:
        extra["run_as"] = (who.uid, who.gid, who.groups)
        extra["volume_owner"] = (who.uid, who.gid)  # what volumes hold belongs to the user
        extra["bind_below_1024"] = any(p.guest < 1024 for p in ctx.image.ports)
        if "HOME" not in ctx.image.env and who.home not in ("/nonexistent", ""):
            ctx.env["HOME"] = who.home
        ctx.env.setdefault("USER", who.name)
        ctx.env.setdefault("LOGNAME", who.name)
    dirs = []
    for d in actions.dirs:
        uid, gid = _ids(accounts, d.user, d.group)
        dirs.append((d.path, d.mode, uid, gid))
    for u in actions.users:
        if u.create_home and u.name in accounts.users:
            a = accounts.users[u.name]
            dirs.append((a.home, 0o755, a.uid, a.gid))
    owners = [(path, *_ids(accounts, user, group or user))
              for path, user, group in actions.owners
              if user in accounts.users and path not in ("/", "/etc")]
    modes = [(path, mode, *_ids(accounts, user, group))
             for path, user, group, mode in actions.modes]
    extra["dirs"] = tuple(dict.fromkeys(dirs))
    extra["modes"] = tuple(dict.fromkeys(modes))
    extra["owners"] = tuple(dict.fromkeys(owners))


def _ids(accounts: object, user: str, group: str) -> tuple[int, int]:
    from engitor.packages.users import Accounts

    assert isinstance(accounts, Accounts)
    a = accounts.users.get(user)
    g = accounts.groups.get(group)
    return (a.uid if a else 0), (g.gid if g else (a.gid if a else 0))


def _with_image_tmpfiles(ctx: Context, actions: Actions) -> Actions:
    """tmpfiles.d files the image itself carries (the user's own, under /etc/tmpfiles.d)."""
    from engitor.packages import maintscripts

    out = maintscripts.Actions()
    out.extend(actions)
    for path in sorted(ctx.entries):
        e = ctx.entries[path]
        if os.path.dirname(path) in ("/etc/tmpfiles.d", "/usr/lib/tmpfiles.d") and \
                path.endswith(".conf") and stat.S_ISREG(e.mode):
            out.extend(maintscripts.parse_tmpfiles(e.contents().decode(errors="replace")))
    return out
