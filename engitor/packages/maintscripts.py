"""What Debian maintainer scripts and packaging data say a daemon needs, read as data.

Maintainer scripts are never run (see `engitor.packages.debian` for why). Instead, the few
commands whose effects a daemon needs are recognised in their text, with the script's own
simple variable assignments substituted:

  adduser/addgroup/useradd/groupadd   the system users and groups a package creates
  adduser USER GROUP                  a membership
  update-alternatives --install       the /usr/bin/NAME -> implementation links
  chown OWNER[:GROUP] /literal/path   owners of the package's state and log directories
  dpkg-statoverride --add U G MODE P  owner and mode of a file (redis.conf, 0640 root:redis)
  ln -s /abs /abs, cp /abs /abs       generated configuration (nginx's sites-enabled/default)

Besides scripts: sysusers.d (`u`/`g`/`m` lines) and tmpfiles.d (`d`/`D` lines: directories with
their mode and owners, and owners who must exist). Everything here is a pure function of text.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

ASSIGN_RE = re.compile(r"^\s*(?:export\s+|local\s+|readonly\s+)?([A-Za-z_][A-Za-z0-9_]*)="
                       r"(\"[^\"$`]*\"|'[^']*'|[^\s;&|`$()]*)\s*(?:[;#].*)?$")
VAR_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")
REDIRECT_RE = re.compile(r"(?<![\w-])\d*(?:>>?|<)&?\s*[^\s;&|]*")
SEPARATORS = {";", "&&", "||", "|", "then", "do", "else", "!", "{", "}", "(", ")"}


@dataclass(frozen=True)
class SysUser:
    name: str
    group: str | None = None  # primary group; None: nogroup
    home: str = "/nonexistent"
    shell: str = "/usr/sbin/nologin"
    gecos: str = ""
    create_home: bool = False


@dataclass(frozen=True)
class TmpDir:
    path: str
    mode: int
    user: str
    group: str


@dataclass
class Actions:
    """What one package's scripts and data ask for."""

    users: list[SysUser] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    members: list[tuple[str, str]] = field(default_factory=list)  # (user, group)
    alternatives: list[tuple[str, str, str, int]] = field(default_factory=list)  # link, name, path, prio
    owners: list[tuple[str, str, str | None]] = field(default_factory=list)  # path, user, group
    modes: list[tuple[str, str, str, int]] = field(default_factory=list)  # statoverride: path, user, group, mode
    links: list[tuple[str, str]] = field(default_factory=list)  # (link, target)
    copies: list[tuple[str, str]] = field(default_factory=list)  # (source, destination)
    dirs: list[TmpDir] = field(default_factory=list)

    def extend(self, other: Actions) -> None:
        for name in ("users", "groups", "members", "alternatives", "owners", "modes", "links",
                     "copies", "dirs"):
            getattr(self, name).extend(getattr(other, name))


def _open_quote(text: str) -> bool:
    """Whether `text` ends inside a quoted string (a string spanning lines)."""
    quote = ""
    escaped = False
    for c in text:
        if escaped:
            escaped = False
        elif c == "\\" and quote != "'":
            escaped = True
        elif quote:
            quote = "" if c == quote else quote
        elif c in "\"'":
            quote = c
        elif c == "#":
            break
    return bool(quote)


def logical_lines(text: str) -> list[str]:
    """Lines with backslash continuations and multi-line strings joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", text)
    out = []
    pending = ""
    for line in joined.splitlines():
        pending = f"{pending}\n{line}" if pending else line
        if _open_quote(pending):
            continue
        stripped = pending.strip()
        pending = ""
        if stripped and not stripped.startswith("#"):
            out.append(stripped)
    return out


def _variables(lines: list[str]) -> dict[str, str]:
    """The script's plain assignments; the first one of a name wins (later ones are usually
    the same default re-stated in another branch)."""
    out: dict[str, str] = {}
    for line in lines:
        m = ASSIGN_RE.match(line)
        if m and m.group(1) not in out:
            value = m.group(2)
            if value[:1] in "\"'":
                value = value[1:-1]
            out[m.group(1)] = VAR_RE.sub(lambda v: out.get(v.group(1) or v.group(2), ""), value)
    return out


def _commands(line: str, variables: dict[str, str]) -> list[list[str]]:
    """Simple commands of one line, split at ; && || | and shell keywords."""
    def sub(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        return variables.get(name, m.group(0))

    line = REDIRECT_RE.sub(" ", VAR_RE.sub(sub, line))
    try:
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|()")
        lexer.whitespace_split = True
        words = list(lexer)
    except ValueError:
        return []
    out: list[list[str]] = [[]]
    for word in words:
        if word in SEPARATORS or word in ("if", "while", "until", "then", "fi", "done"):
            out.append([])
        elif word.startswith("$"):
            continue  # a variable set at run time ($quiet): its value is unknown here
        else:
            out[-1].append(word)
    return [c for c in out if c]


ADDUSER_VALUES = {"--home", "--shell", "--ingroup", "--gecos", "--comment", "--uid", "--gid",
                  "--firstuid", "--lastuid", "--firstgid", "--lastgid", "--conf", "--add-extra-groups"}
USERADD_VALUES = {"-d", "--home-dir", "-s", "--shell", "-g", "--gid", "-c", "--comment", "-u",
                  "--uid", "-G", "--groups", "-k", "--skel", "-K", "--key", "-e", "-f", "-b",
                  "--base-dir", "-p", "--password"}


def _options(words: list[str], with_value: set[str]) -> tuple[dict[str, str], list[str]]:
    opts: dict[str, str] = {}
    rest: list[str] = []
    i = 0
    while i < len(words):
        w = words[i]
        if w.startswith("--") and "=" in w:
            key, _, value = w.partition("=")
            opts[key] = value
        elif w in with_value and i + 1 < len(words):
            opts[w] = words[i + 1]
            i += 1
        elif w.startswith("-"):
            opts[w] = ""
        else:
            rest.append(w)
        i += 1
    return opts, rest


def _adduser(words: list[str], out: Actions) -> None:
    opts, names = _options(words[1:], ADDUSER_VALUES)
    if len(names) == 2:  # adduser USER GROUP (or addgroup USER GROUP): a membership
        out.members.append((names[0], names[1]))
        return
    if len(names) != 1:
        return
    name = names[0]
    if words[0] == "addgroup" or ("--group" in opts and "--system" not in opts):
        out.groups.append(name)
        return
    if "--system" not in opts:
        return  # a login user: not something a package makes
    group = opts.get("--ingroup") or (name if "--group" in opts else None)
    if "--group" in opts:
        out.groups.append(name)
    home = opts.get("--home", "/nonexistent")
    out.users.append(SysUser(name, group, home, opts.get("--shell", "/usr/sbin/nologin"),
                             opts.get("--gecos", opts.get("--comment", "")),
                             create_home="--no-create-home" not in opts and home != "/nonexistent"))


def _useradd(words: list[str], out: Actions) -> None:
    opts, names = _options(words[1:], USERADD_VALUES)
    if words[0] == "groupadd":
        if names:
            out.groups.append(names[0])
        return
    if len(names) != 1:
        return
    name = names[0]
    group = opts.get("-g") or opts.get("--gid") or name
    if group == name:
        out.groups.append(name)
    home = opts.get("-d") or opts.get("--home-dir") or "/nonexistent"
    out.users.append(SysUser(name, group, home, opts.get("-s") or opts.get("--shell") or
                             "/usr/sbin/nologin", opts.get("-c") or opts.get("--comment") or "",
                             create_home="-m" in opts or "--create-home" in opts))


def _alternatives(words: list[str], out: Actions) -> None:
    if "--install" not in words:
        return
    i = words.index("--install")
    head = words[i + 1:i + 5]
    if len(head) < 4 or not head[3].lstrip("-").isdigit():
        return
    link, name, path, prio = head[0], head[1], head[2], int(head[3])
    out.alternatives.append((link, name, path, prio))
    rest = words[i + 5:]
    for j, w in enumerate(rest):
        if w == "--slave" and j + 3 < len(rest):
            out.alternatives.append((rest[j + 1], rest[j + 2], rest[j + 3], prio))


def _statoverride(words: list[str], out: Actions) -> None:
    """dpkg-statoverride --update --add USER GROUP MODE PATH (redis: its 0640 redis.conf)."""
    if "--add" not in words:
        return
    rest = words[words.index("--add") + 1:]
    if len(rest) >= 4 and re.fullmatch(r"[0-7]{3,4}", rest[2]) and _literal(rest[3]):
        out.modes.append((rest[3], rest[0], rest[1], int(rest[2], 8)))


def _literal(path: str) -> bool:
    return path.startswith("/") and not any(c in path for c in "$*?[`")


def _chown(words: list[str], out: Actions) -> None:
    opts, rest = _options(words[1:], set())
    if len(rest) < 2 or not re.fullmatch(r"[a-z_][a-z0-9_-]*(?::[a-z_][a-z0-9_-]*)?", rest[0]):
        return
    user, _, group = rest[0].partition(":")
    for path in rest[1:]:
        if _literal(path):
            out.owners.append((path, user, group or None))


def _ln(words: list[str], out: Actions) -> None:
    opts, rest = _options(words[1:], set())
    if any("s" in o for o in opts if not o.startswith("--")) and len(rest) == 2 and \
            all(map(_literal, rest)):
        out.links.append((rest[1], rest[0]))


def _cp(words: list[str], out: Actions) -> None:
    opts, rest = _options(words[1:], set())
    if len(rest) == 2 and all(map(_literal, rest)):
        out.copies.append((rest[0], rest[1]))


HANDLERS = {"adduser": _adduser, "addgroup": _adduser, "useradd": _useradd,
            "groupadd": _useradd, "update-alternatives": _alternatives, "chown": _chown,
            "ln": _ln, "cp": _cp, "dpkg-statoverride": _statoverride}


def parse_script(text: str) -> Actions:
    """The actions of one maintainer script (preinst or postinst)."""
    out = Actions()
    lines = logical_lines(text)
    variables = _variables(lines)
    for line in lines:
        for words in _commands(line, variables):
            handler = HANDLERS.get(words[0].rsplit("/", 1)[-1])
            if handler is not None:
                handler(words, out)
    return out


def parse_sysusers(text: str) -> Actions:
    """systemd sysusers.d: `u NAME ID "GECOS" HOME SHELL`, `g NAME`, `m USER GROUP`."""
    out = Actions()
    for line in logical_lines(text):
        try:
            f = shlex.split(line)
        except ValueError:
            continue
        if len(f) < 2:
            continue
        kind, name = f[0], f[1]
        if kind == "u":
            gecos = f[3] if len(f) > 3 and f[3] != "-" else ""
            home = f[4] if len(f) > 4 and f[4] != "-" else "/nonexistent"
            shell = f[5] if len(f) > 5 and f[5] != "-" else "/usr/sbin/nologin"
            idspec = f[2] if len(f) > 2 else "-"
            group = idspec.split(":", 1)[1] if ":" in idspec and not \
                idspec.split(":", 1)[1].isdigit() else name
            out.groups.append(group)
            out.users.append(SysUser(name, group, home, shell, gecos))
        elif kind == "g":
            out.groups.append(name)
        elif kind == "m" and len(f) > 2:
            out.members.append((name, f[2]))
    return out


def parse_tmpfiles(text: str) -> Actions:
    """tmpfiles.d `d`/`D` lines: directories made at boot with their mode and owners."""
    out = Actions()
    for line in logical_lines(text):
        f = line.split()
        if len(f) < 2 or f[0].rstrip("!-") not in ("d", "D"):
            continue
        mode = int(f[2], 8) if len(f) > 2 and re.fullmatch(r"[0-7]{3,4}", f[2]) else 0o755
        user = f[3] if len(f) > 3 and f[3] != "-" else "root"
        group = f[4] if len(f) > 4 and f[4] != "-" else "root"
        out.dirs.append(TmpDir(f[1], mode, user, group))
    return out
