"""`fs`: file operations for hooks, confined to one directory tree.

In a `before_build` hook the tree is the build's staging root, seen the way the guest will see
it: `fs.write("/etc/app.conf", text)` writes the image's /etc/app.conf. Paths resolve inside the
tree like a chroot (`..` stops at the root, absolute symlinks point back into the tree), so a hook
cannot touch the host by accident. "Unless told otherwise": `fs.src` reads the recipe's folder,
`fs.copy_in(src, dst)` copies from it, and `fs.at(dir, {write = true})` opens another tree.

    fs.read(p) fs.write(p, data [, mode]) fs.append(p, data) fs.mkdir(p) fs.list([p])
    fs.glob(pattern) fs.exists(p) fs.isdir(p) fs.isfile(p) fs.stat(p) fs.remove(p [, {recursive}])
    fs.copy(src, dst) fs.copy_in(host_src, dst) fs.chmod(p, mode) fs.symlink(target, p)
    fs.path(p) fs.root fs.writable fs.src fs.at(dir [, {write}]) fs.join(…) fs.basename(p)
    fs.dirname(p)
"""

from __future__ import annotations

import builtins
import fnmatch
import os
import posixpath
import shutil
import stat
from pathlib import Path
from typing import Any

from engitor.lua.api import ApiError, as_bytes, expose, is_table, to_python

MAX_SYMLINKS = 40


def _mode(value: Any) -> int:
    """0o755, 493 or "755"/"0755" (Lua has no octal literals)."""
    if isinstance(value, str) and value.strip().isdigit():
        return int(value, 8)
    if isinstance(value, int | float) and not isinstance(value, bool) and float(value).is_integer():
        return int(value)
    raise ApiError(f"expected a file mode like '755', got {value!r}")


class Tree:
    """A directory tree that Lua may touch, and only inside it."""

    def __init__(self, root: Path, *, writable: bool, source_dir: Path):
        self.root = Path(root).resolve()
        self.writable = writable
        self.source_dir = Path(source_dir).resolve()

    # Resolution: every path is relative to the root ("/etc/x" and "etc/x" are the same file);
    # symlinks met on the way are followed inside the root, never out of it.
    def resolve(self, path: Any, *, follow_last: bool = True) -> Path:
        if not isinstance(path, str) or not path:
            raise ApiError(f"expected a path (a non-empty string), got {path!r}")
        if "\0" in path:
            raise ApiError("paths cannot contain NUL bytes")
        todo = [p for p in path.split("/") if p not in ("", ".")]
        done: list[str] = []
        hops = 0
        while todo:
            part = todo.pop(0)
            if part == "..":
                if done:
                    done.pop()
                continue
            candidate = self.root.joinpath(*done, part)
            if (todo or follow_last) and candidate.is_symlink():
                hops += 1
                if hops > MAX_SYMLINKS:
                    raise ApiError(f"{path}: too many levels of symbolic links")
                target = os.readlink(candidate)
                if target.startswith("/"):
                    done = []
                todo = [p for p in target.split("/") if p not in ("", ".")] + todo
                continue
            done.append(part)
        return self.root.joinpath(*done)

    def _guest(self, real: Path) -> str:
        return "/" + real.relative_to(self.root).as_posix() if real != self.root else "/"

    def _writing(self, path: Any, *, follow_last: bool = True) -> Path:
        if not self.writable:
            raise ApiError(f"{path}: this fs is read-only ({self.root}); "
                           "use fs.at(dir, {write = true}) to write elsewhere")
        return self.resolve(path, follow_last=follow_last)

    # -- the API --------------------------------------------------------------------------------

    def read(self, path: Any) -> bytes:
        return self.resolve(path).read_bytes()

    def write(self, path: Any, data: Any, mode: Any = None) -> None:
        target = self._writing(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(as_bytes(_text(data)))
        if mode is not None:
            target.chmod(_mode(mode))

    def append(self, path: Any, data: Any) -> None:
        target = self._writing(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("ab") as f:
            f.write(as_bytes(_text(data)))

    def mkdir(self, path: Any) -> None:
        self._writing(path).mkdir(parents=True, exist_ok=True)

    def list(self, path: Any = ".") -> list[str]:
        return sorted(os.listdir(self.resolve(path)))

    def glob(self, pattern: Any) -> builtins.list[str]:
        """Paths under the tree matching a shell pattern ('**' spans folders), sorted."""
        if not isinstance(pattern, str):
            raise ApiError(f"expected a pattern (a string), got {pattern!r}")
        absolute = pattern.startswith("/")
        pat = pattern.lstrip("/")
        if ".." in pat.split("/") or not pat:
            raise ApiError(f"{pattern}: patterns stay inside the tree (no '..')")
        found = []
        for real in sorted(self.root.glob(pat)):
            rel = real.relative_to(self.root).as_posix()
            found.append("/" + rel if absolute else rel)
        return found

    def exists(self, path: Any) -> bool:
        return os.path.lexists(self.resolve(path, follow_last=False))

    def isdir(self, path: Any) -> bool:
        return self.resolve(path).is_dir()

    def isfile(self, path: Any) -> bool:
        return self.resolve(path).is_file()

    def stat(self, path: Any) -> dict[str, Any] | None:
        real = self.resolve(path, follow_last=False)
        try:
            st = real.lstat()
        except FileNotFoundError:
            return None
        kind = ("link" if stat.S_ISLNK(st.st_mode) else "dir" if stat.S_ISDIR(st.st_mode)
                else "file" if stat.S_ISREG(st.st_mode) else "other")
        return {"type": kind, "size": st.st_size, "mode": stat.S_IMODE(st.st_mode),
                "mtime": st.st_mtime}

    def remove(self, path: Any, opts: Any = None) -> None:
        target = self._writing(path, follow_last=False)
        if target == self.root:
            raise ApiError("refusing to remove the root of the tree")
        recursive = bool(_opts(opts).get("recursive"))
        if target.is_dir() and not target.is_symlink():
            if recursive:
                shutil.rmtree(target)
            else:
                target.rmdir()
        else:
            target.unlink()

    def copy(self, src: Any, dst: Any) -> None:
        self._copy(self.resolve(src), dst)

    def copy_in(self, src: Any, dst: Any) -> None:
        """Copy a file or folder of the recipe's folder (read-only) into this tree."""
        self._copy(Tree(self.source_dir, writable=False, source_dir=self.source_dir).resolve(src),
                   dst)

    def _copy(self, source: Path, dst: Any) -> None:
        target = self._writing(dst)
        if (target.is_dir() or str(dst).endswith("/")) and not source.is_dir():
            target = target / source.name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, symlinks=True, dirs_exist_ok=True)
        else:
            shutil.copy2(source, target)

    def chmod(self, path: Any, mode: Any) -> None:
        self._writing(path).chmod(_mode(mode))

    def symlink(self, target: Any, path: Any) -> None:
        if not isinstance(target, str) or not target:
            raise ApiError(f"expected a link target (a string), got {target!r}")
        link = self._writing(path, follow_last=False)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(target)

    def path(self, path: Any = ".") -> str:
        """The host path of a file in the tree (to hand to host commands)."""
        return str(self.resolve(path))


def _text(data: Any) -> str | bytes:
    if isinstance(data, str | bytes):
        return data
    if isinstance(data, int | float) and not isinstance(data, bool):
        return str(data)
    raise ApiError(f"expected the data as a string, got {type(data).__name__}")


def _opts(opts: Any) -> dict[str, Any]:
    if opts is None:
        return {}
    if not is_table(opts):
        raise ApiError("expected an options table like {recursive = true}")
    value = to_python(opts)
    return value if isinstance(value, dict) else {}


def _join(*parts: Any) -> str:
    if not all(isinstance(p, str) for p in parts):
        raise ApiError("fs.join takes strings")
    return posixpath.join(*parts) if parts else ""


def _basename(path: Any) -> str:
    return posixpath.basename(str(path).rstrip("/"))


def _dirname(path: Any) -> str:
    return posixpath.dirname(str(path).rstrip("/")) or ("/" if str(path).startswith("/") else ".")


def _match(name: Any, pattern: Any) -> bool:
    return fnmatch.fnmatchcase(str(name), str(pattern))


def make(lua: Any, tree: Tree) -> Any:
    """The Lua table for one tree."""
    table = lua.table()
    for name in ("read", "write", "append", "mkdir", "list", "glob", "exists", "isdir", "isfile",
                 "stat", "remove", "copy", "copy_in", "chmod", "symlink", "path"):
        table[name] = expose(lua, getattr(tree, name))
    for name, func in (("join", _join), ("basename", _basename), ("dirname", _dirname),
                       ("match", _match)):
        table[name] = expose(lua, func)
    table.root = str(tree.root)
    table.writable = tree.writable

    def at(directory: Any, opts: Any = None) -> Any:
        if not isinstance(directory, str) or not directory:
            raise ApiError(f"expected a folder (a string), got {directory!r}")
        root = (tree.source_dir / directory).resolve()
        if not root.is_dir():
            raise ApiError(f"{root}: not a folder")
        sub = Tree(root, writable=bool(_opts(opts).get("write")), source_dir=tree.source_dir)
        return make(lua, sub)

    table.at = expose(lua, at)
    return table


def install(lua: Any, env: Any, *, root: Path, writable: bool, source_dir: Path) -> None:
    """Put `fs` into `env`: a tree at `root`, with `fs.src` the recipe's folder (read-only)."""
    fs = make(lua, Tree(root, writable=writable, source_dir=source_dir))
    fs.src = make(lua, Tree(source_dir, writable=False, source_dir=source_dir))
    env.fs = fs

