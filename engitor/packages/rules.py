"""Which files of a runtime's packages go into an image: drop rules, and keep rules that win.

Patterns are guest paths with shell-style wildcards: `*` and `?` stay inside one folder, `[…]`
is a character class, `**` crosses folders, and a pattern ending in `/**` also names the folder
itself (`/usr/share/doc/**` drops the folder and everything in it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# What a single-program VM never reads: documentation, manuals, translations, what compilers
# need (headers, static libraries, pkg-config), and what only an installed, booted Debian system
# uses (init scripts, systemd units, cron, logrotate, shell completions, bug-report hooks).
DEFAULT_DROP: tuple[str, ...] = (
    "/usr/share/doc/**", "/usr/share/doc-base/**", "/usr/share/man/**", "/usr/share/info/**",
    "/usr/share/gtk-doc/**", "**/man/man[1-9]/**",
    "/usr/share/locale/**", "/usr/lib/locale/**", "/usr/share/i18n/**",
    "/usr/include/**", "**/*.a", "**/pkgconfig/**",
    "/etc/init.d/**", "/etc/rc?.d/**", "/etc/systemd/**", "/lib/systemd/**",
    "/usr/lib/systemd/**", "/usr/lib/tmpfiles.d/**", "/usr/lib/sysusers.d/**",
    "/etc/cron.*/**", "/etc/logrotate.d/**", "/usr/share/bash-completion/**",
    "/etc/bash_completion.d/**", "/usr/share/zsh/**", "/usr/share/lintian/**",
    "/usr/share/bug/**", "/usr/share/menu/**", "/usr/share/applications/**",
    "/usr/share/pixmaps/**",
)


def compile_glob(pattern: str) -> re.Pattern[str]:
    """A pattern as a regular expression over whole guest paths. Raises ValueError."""
    out = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if pattern.startswith("/**", i) and i + 3 == n:
            out.append("(?:/.*)?")
            i += 3
        elif pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[":
            end = pattern.find("]", i + 2)
            if end < 0:
                raise ValueError("'[' without a closing ']'")
            body = pattern[i + 1:end]
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end + 1
        else:
            out.append(re.escape(c))
            i += 1
    return re.compile("".join(out) + r"\Z")


@dataclass(frozen=True)
class Rules:
    keep: tuple[str, ...]
    drop: tuple[str, ...]
    _keep: re.Pattern[str] | None
    _drop: re.Pattern[str] | None

    @staticmethod
    def make(*, keep: tuple[str, ...] = (), drop: tuple[str, ...] = (),
             defaults: bool = True) -> Rules:
        drops = (*DEFAULT_DROP, *drop) if defaults else tuple(drop)
        return Rules(tuple(keep), drops, _union(keep), _union(drops))

    def dropped(self, path: str) -> bool:
        """Whether the file at guest `path` stays out of the image."""
        if self._drop is None or not self._drop.match(path):
            return False
        return self._keep is None or not self._keep.match(path)

    def may_keep_below(self, folder: str) -> bool:
        """Whether a keep rule could name something inside `folder` (so a dropped folder must
        still be walked)."""
        return any(_prefix_could_match(p, folder) for p in self.keep)

    def key(self) -> list[list[str]]:
        return [list(self.keep), list(self.drop)]


def _union(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{compile_glob(p).pattern})" for p in patterns))


def _prefix_could_match(pattern: str, folder: str) -> bool:
    """Could `pattern` match some path below `folder`? Conservative: yes when unsure."""
    literal = re.split(r"[*?\[]", pattern, maxsplit=1)[0]
    prefix = folder.rstrip("/") + "/"
    return literal.startswith(prefix) or prefix.startswith(literal)
