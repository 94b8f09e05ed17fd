"""The image's user database: /etc/passwd, group, shadow and gshadow.

Debian's fixed users come from base-passwd's own data (passwd.master, group.master: root 0,
daemon 1, www-data 33, nobody 65534, …). Users and groups that packages create at install time
(adduser/useradd in maintainer scripts, sysusers.d, owners named in tmpfiles.d) get ids here.

Ids are stable: Debian's adduser hands out the next free id, so a user's uid depends on the
order packages were installed in. Here an id is derived from the name alone — 100 + sha256(name)
mod 900, within Debian's dynamic system range 100-999, moving to the next free id on a
collision, names taken in sorted order. So `postgres` has the same uid in every image that
has it whatever else the image holds (unless two names collide, which the sorted order
still settles the same way each build), and data on a volume keeps its owner across images.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace

from engitor.errors import UserError, did_you_mean
from engitor.packages.maintscripts import Actions, SysUser

FIRST_SYSTEM_ID, LAST_SYSTEM_ID = 100, 999
NOGROUP = "nogroup"


@dataclass(frozen=True)
class Account:
    name: str
    uid: int
    gid: int
    gecos: str = ""
    home: str = "/nonexistent"
    shell: str = "/usr/sbin/nologin"

    def line(self) -> str:
        return f"{self.name}:x:{self.uid}:{self.gid}:{self.gecos}:{self.home}:{self.shell}"


@dataclass(frozen=True)
class Group:
    name: str
    gid: int
    members: tuple[str, ...] = ()

    def line(self) -> str:
        return f"{self.name}:x:{self.gid}:{','.join(self.members)}"


@dataclass
class Accounts:
    users: dict[str, Account] = field(default_factory=dict)
    groups: dict[str, Group] = field(default_factory=dict)

    def user_of_uid(self, uid: int) -> Account | None:
        return next((a for a in self.users.values() if a.uid == uid), None)


def parse_master(passwd: str, group: str) -> Accounts:
    """base-passwd's passwd.master and group.master (the format of /etc/passwd and group)."""
    out = Accounts()
    for line in passwd.splitlines():
        f = line.split(":")
        if len(f) == 7 and f[2].isdigit() and f[3].isdigit():
            out.users[f[0]] = Account(f[0], int(f[2]), int(f[3]), f[4], f[5], f[6])
    for line in group.splitlines():
        f = line.split(":")
        if len(f) == 4 and f[2].isdigit():
            out.groups[f[0]] = Group(f[0], int(f[2]), tuple(m for m in f[3].split(",") if m))
    return out


def stable_id(name: str, taken: set[int]) -> int:
    """An id in 100-999 from the name alone, the next free one on a collision."""
    span = LAST_SYSTEM_ID - FIRST_SYSTEM_ID + 1
    start = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") % span
    for step in range(span):
        candidate = FIRST_SYSTEM_ID + (start + step) % span
        if candidate not in taken:
            return candidate
    raise UserError("more than 900 system users or groups in one image",
                    hint="the system id range 100-999 is full")


def add(accounts: Accounts, actions: Actions) -> Accounts:
    """The packages' users and groups added with stable ids; base users keep theirs."""
    users: dict[str, SysUser] = {}
    for u in actions.users:
        users.setdefault(u.name, u)
    # An owner named in tmpfiles.d must exist; the package's script makes it as a plain system
    # user when it is not in base-passwd (memcached, haproxy and tinyproxy name theirs there).
    for d in actions.dirs:
        for name in (d.user,):
            if name not in accounts.users and name not in users:
                users[name] = SysUser(name, name)
    group_names = set(actions.groups) | {u.group for u in users.values() if u.group}
    group_names |= {d.group for d in actions.dirs} | {g for _, g in actions.members}
    gids = {g.gid for g in accounts.groups.values()}
    uids = {a.uid for a in accounts.users.values()}
    out = Accounts(dict(accounts.users), dict(accounts.groups))
    for name in sorted(users):  # a user's own group takes its uid when it can
        if name in out.users:
            continue
        uid = stable_id(name, uids)
        uids.add(uid)
        u = users[name]
        group = u.group or NOGROUP
        if group not in out.groups:
            gid = uid if uid not in gids else stable_id(group, gids)
            gids.add(gid)
            out.groups[group] = Group(group, gid)
        out.users[name] = Account(name, uid, out.groups[group].gid, u.gecos, u.home, u.shell)
    for name in sorted(group_names - set(out.groups)):
        gid = stable_id(name, gids)
        gids.add(gid)
        out.groups[name] = Group(name, gid)
    for user, group in sorted(set(actions.members)):
        g = out.groups.get(group)
        if g and user in out.users and user not in g.members:
            out.groups[group] = replace(g, members=(*g.members, user))
    return out


def render(accounts: Accounts) -> dict[str, tuple[str, int]]:
    """Guest path -> (text, mode): passwd and group readable by all, the shadow files not.
    No passwords: every account is locked ('*' in shadow); nothing here logs in."""
    users = sorted(accounts.users.values(), key=lambda a: (a.uid, a.name))
    groups = sorted(accounts.groups.values(), key=lambda g: (g.gid, g.name))
    return {
        "/etc/passwd": ("".join(a.line() + "\n" for a in users), 0o644),
        "/etc/group": ("".join(g.line() + "\n" for g in groups), 0o644),
        "/etc/shadow": ("".join(f"{a.name}:*:0:0:99999:7:::\n" for a in users), 0o640),
        "/etc/gshadow": ("".join(f"{g.name}:*::{','.join(g.members)}\n" for g in groups), 0o640),
    }


@dataclass(frozen=True)
class RunAs:
    """Who the init runs the program as."""

    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str
    name: str


def run_as(accounts: Accounts, spec: str, *, where: str | None = None) -> RunAs:
    """`NAME[:GROUP]` (names or numbers) -> ids; an unknown name is the user's error."""
    user, _, group = spec.partition(":")
    if user.isdigit():
        account = accounts.user_of_uid(int(user)) or Account(f"uid{user}", int(user), int(user))
    elif user in accounts.users:
        account = accounts.users[user]
    else:
        close = did_you_mean(user, accounts.users)
        raise UserError(f"user {user!r} does not exist in the image",
                        hint=(close + "; " if close else "") + "users come from Debian's base "
                        "users and the image's Debian packages (add one with debian = {…}), "
                        "or give numeric ids: user = '1000:1000'", where=where)
    if not group:
        gid = account.gid
    elif group.isdigit():
        gid = int(group)
    elif group in accounts.groups:
        gid = accounts.groups[group].gid
    else:
        close = did_you_mean(group, accounts.groups)
        raise UserError(f"group {group!r} does not exist in the image",
                        hint=close or "name a group of the image's /etc/group, or a number",
                        where=where)
    supplementary = sorted({gid, *(g.gid for g in accounts.groups.values()
                                   if account.name in g.members)})
    return RunAs(account.uid, gid, tuple(supplementary), account.home, account.name)
