"""Users and groups to uids, as the name service of this host sees them, at apply time.

``meta skgid`` only sees a process's primary group (LAB-NOTES), so a chosen group is resolved
to all its members: those listed in the group (supplementary) and those whose primary group it
is. With LDAP/sssd, the primary-group side needs enumeration (``enumerate = true``); members
listed in the group entry are found either way.
"""

from __future__ import annotations

import grp
import pwd
from collections.abc import Callable, Iterable
from dataclasses import dataclass

if __name__.startswith("salt.loaded."):  # Salt's own __utils__ loader: skipped quietly (docs/core.md, 5)
    raise ImportError("an hpc helper, imported through hpc_synced")


@dataclass(frozen=True)
class Resolved:
    uids: frozenset[int]
    missing: tuple[str, ...]  # "user aliprod", "group alice": not known on this host


def _uid(name: str, getpwnam: Callable) -> int | None:
    try:
        return getpwnam(name).pw_uid
    except KeyError:
        return None


def resolve(users: Iterable[str], groups: Iterable[str], getpwnam: Callable = pwd.getpwnam,
            getgrnam: Callable = grp.getgrnam, getpwall: Callable = pwd.getpwall) -> Resolved:
    uids: set[int] = set()
    missing: list[str] = []
    for user in users:
        uid = _uid(user, getpwnam)
        if uid is None:
            missing.append(f"user {user}")
        else:
            uids.add(uid)
    everyone = None
    for group in groups:
        try:
            entry = getgrnam(group)
        except KeyError:
            missing.append(f"group {group}")
            continue
        uids.update(u for u in (_uid(m, getpwnam) for m in entry.gr_mem) if u is not None)
        everyone = everyone if everyone is not None else list(getpwall())
        uids.update(p.pw_uid for p in everyone if p.pw_gid == entry.gr_gid)
    return Resolved(frozenset(uids), tuple(missing))
