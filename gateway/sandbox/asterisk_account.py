"""The host account Asterisk runs as: a dedicated system user with the same uid/gid on the host and in its root.

The chroot has its own /etc/passwd, and Debian gives its ``asterisk`` user whatever system uid was free in the
root (101 in the sid root), which on the host may belong to anybody (on this project's machine image: PostgreSQL's
``postgres``): a network-facing server would then hold the rights of that account's files. So the host gets a
system user of its own (``hotline-asterisk``: no login shell, no home) and the root's ``asterisk`` user is
renumbered to its uid/gid, with the root's files re-owned. The name in the root stays ``asterisk`` (Debian's
packaging and ``chroot --userspec=asterisk:asterisk`` resolve it there).

The decisions (which ids are free, what the passwd/group files become, whether the running Asterisk is the
account) are pure functions over file texts; ``ensure_account`` does the I/O. Synchronous: the stack CLI and
scripts/setup.sh call it (``python -m gateway.sandbox.asterisk_account ROOT``).
"""
from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["HOST_ACCOUNT", "ROOT_USER", "AccountCheck", "AccountError", "check_account", "ensure_account",
           "pick_free_id", "process_uid", "read_ids", "renumbered"]

HOST_ACCOUNT = "hotline-asterisk"
ROOT_USER = "asterisk"
# Debian's system id range (/etc/login.defs SYS_UID_MIN..SYS_UID_MAX), searched from the top like useradd does.
SYSTEM_IDS = range(999, 99, -1)


class AccountError(Exception):
    """The dedicated account cannot be created or the root cannot be renumbered; the message says why."""


@dataclass(frozen=True)
class AccountCheck:
    """Whether Asterisk runs as the dedicated host account."""

    root_uid: int | None        # the root's asterisk user (what Asterisk is started as)
    host_name: str | None       # the host's name for that uid (None: no host account has it)
    account_uid: int | None     # the dedicated host account's uid (None: it does not exist)
    running_uid: int | None     # the running Asterisk process's real uid (None: not running)

    @property
    def problem(self) -> str | None:
        """Why Asterisk does not (or would not) run as the dedicated account; None when it does."""
        if self.root_uid is None:
            return f"the root has no {ROOT_USER} user"
        owner = f" (the host's {self.host_name})" if self.host_name else ""
        if self.account_uid is None:
            return f"no host account {HOST_ACCOUNT}: Asterisk runs as uid {self.root_uid}{owner}; run scripts/setup.sh"
        if self.root_uid != self.account_uid:
            return (f"the root's {ROOT_USER} user is uid {self.root_uid}{owner}, not {HOST_ACCOUNT}'s"
                    f" {self.account_uid}; run scripts/setup.sh")
        if self.running_uid is not None and self.running_uid != self.account_uid:
            return f"the running Asterisk has uid {self.running_uid}, not {HOST_ACCOUNT}'s {self.account_uid}"
        return None

    @property
    def ok(self) -> bool:
        return self.problem is None

    def as_dict(self) -> dict:
        return {"uid": self.root_uid, "host_user": self.host_name, "expected": HOST_ACCOUNT,
                "running_uid": self.running_uid, "ok": self.ok, "problem": self.problem}


# -- pure decisions -------------------------------------------------------------------------------------------


def read_ids(text: str) -> dict[str, tuple[int, int]]:
    """``name -> (id, gid)`` from /etc/passwd text (for /etc/group text both numbers are the group's id).

    Lines that are not ``name:x:number:...`` (comments, NIS ``+`` entries, damage) are left out.
    """
    ids = {}
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) < 3 or not parts[0] or not parts[2].isdigit():
            continue
        gid = parts[3] if len(parts) > 3 and parts[3].isdigit() else parts[2]
        ids[parts[0]] = (int(parts[2]), int(gid))
    return ids


def pick_free_id(*taken: set[int]) -> int:
    """The highest system id (999 downwards) in none of the ``taken`` sets."""
    for candidate in SYSTEM_IDS:
        if not any(candidate in t for t in taken):
            return candidate
    raise AccountError("no free system id (100-999) on the host and in the root")


def renumbered(passwd: str, group: str, user: str, uid: int, gid: int) -> tuple[str, str]:
    """The root's passwd and group texts with ``user`` (and its own group of the same name) at ``uid``/``gid``."""
    def rewrite(text: str, fields: dict[int, int]) -> str:
        out = []
        for line in text.splitlines(keepends=True):
            parts = line.rstrip("\n").split(":")
            if parts[0] == user and len(parts) > max(fields):
                for index, value in fields.items():
                    parts[index] = str(value)
                line = ":".join(parts) + ("\n" if line.endswith("\n") else "")
            out.append(line)
        return "".join(out)
    if user not in read_ids(passwd):
        raise AccountError(f"no {user} user in the root's /etc/passwd")
    return rewrite(passwd, {2: uid, 3: gid}), rewrite(group, {2: gid})


def check_account(host_passwd: str, root_passwd: str, running_uid: int | None = None) -> AccountCheck:
    """Compare the root's asterisk user with the host's dedicated account (and the running process, if any)."""
    root = read_ids(root_passwd).get(ROOT_USER)
    host = read_ids(host_passwd)
    root_uid = root[0] if root else None
    host_name = next((name for name, (uid, _) in host.items() if uid == root_uid), None)
    account = host.get(HOST_ACCOUNT)
    return AccountCheck(root_uid=root_uid, host_name=host_name, account_uid=account[0] if account else None,
                        running_uid=running_uid)


def process_uid(status_text: str) -> int | None:
    """The real uid from a /proc/PID/status text."""
    for line in status_text.splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    return None


# -- I/O --------------------------------------------------------------------------------------------------------


def current_check(root: Path, pid: int | None = None) -> AccountCheck:
    """The check for ``root`` and, when ``pid`` is given, the process running Asterisk."""
    running = None
    if pid is not None:
        try:
            running = process_uid(Path(f"/proc/{pid}/status").read_text())
        except OSError:
            running = None
    return check_account(_read("/etc/passwd"), _read(root / "etc" / "passwd"), running)


def ensure_account(root: Path, log=print) -> tuple[int, int]:
    """Create the host account if missing and renumber the root to it; returns its (uid, gid). Idempotent.

    Files are re-owned before the root's passwd changes, so an interrupted run is finished by the next one
    (the passwd still names the old ids until every file has moved).
    """
    root_passwd, root_group = _read(root / "etc" / "passwd"), _read(root / "etc" / "group")
    root_users, root_groups = read_ids(root_passwd), read_ids(root_group)
    if ROOT_USER not in root_users:
        raise AccountError(f"{root}: no {ROOT_USER} user in the root's /etc/passwd")
    old_uid, old_gid = root_users[ROOT_USER]
    uid, gid = _host_account(root_users, root_groups, log)
    if (old_uid, old_gid) == (uid, gid):
        return uid, gid
    others_uids = {u for name, (u, _) in root_users.items() if name != ROOT_USER}
    others_gids = {g for name, (g, _) in root_groups.items() if name != ROOT_USER}
    if uid in others_uids or gid in others_gids:
        raise AccountError(f"{root}: uid {uid} or gid {gid} of {HOST_ACCOUNT} belongs to another user or group"
                           " in the root")
    moved = _reown(root, old_uid, old_gid, uid, gid)
    passwd, group = renumbered(root_passwd, root_group, ROOT_USER, uid, gid)
    _replace(root / "etc" / "group", group)
    _replace(root / "etc" / "passwd", passwd)
    log(f"asterisk root: {ROOT_USER} renumbered from uid {old_uid}/gid {old_gid} to {HOST_ACCOUNT}'s"
        f" {uid}/{gid} ({moved} files re-owned)")
    return uid, gid


def _host_account(root_users: dict, root_groups: dict, log) -> tuple[int, int]:
    host_users, host_groups = read_ids(_read("/etc/passwd")), read_ids(_read("/etc/group"))
    if HOST_ACCOUNT in host_users:
        return host_users[HOST_ACCOUNT]
    # ids free on the host and in the root (the root's asterisk user is about to move, so its ids do not count)
    root_uids = {u for name, (u, _) in root_users.items() if name != ROOT_USER}
    root_gids = {g for name, (g, _) in root_groups.items() if name != ROOT_USER}
    host_uids = {u for u, _ in host_users.values()}
    host_gids = {g for g, _ in host_groups.values()}
    if HOST_ACCOUNT in host_groups:
        gid = host_groups[HOST_ACCOUNT][0]
    else:
        gid = pick_free_id(host_gids, root_gids)
        _run(["groupadd", "--system", "--gid", str(gid), HOST_ACCOUNT])
    uid = gid if gid not in host_uids and gid not in root_uids else pick_free_id(host_uids, root_uids)
    _run(["useradd", "--system", "--uid", str(uid), "--gid", str(gid), "--no-create-home",
          "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", "--comment", "Asterisk of the hotline sandbox",
          HOST_ACCOUNT])
    log(f"host: system user {HOST_ACCOUNT} created (uid {uid}, gid {gid}, no login shell, no home)")
    return uid, gid


def _reown(root: Path, old_uid: int, old_gid: int, uid: int, gid: int) -> int:
    """lchown every file of the root owned by the old ids, staying on the root's own file system."""
    device = root.stat().st_dev
    moved = 0
    for top, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            path = os.path.join(top, name)
            st = os.lstat(path)
            if st.st_dev != device:
                continue  # /proc, /dev (mounted while Asterisk runs) are not the root's files
            if st.st_uid == old_uid or st.st_gid == old_gid:
                os.lchown(path, uid if st.st_uid == old_uid else -1, gid if st.st_gid == old_gid else -1)
                moved += 1
        dirs[:] = [d for d in dirs if os.lstat(os.path.join(top, d)).st_dev == device]
    return moved


def _replace(path: Path, text: str) -> None:
    st = path.stat()
    tmp = path.with_name(f".{path.name}.hotline-tmp")
    tmp.write_text(text)
    os.chown(tmp, st.st_uid, st.st_gid)
    os.chmod(tmp, st.st_mode & 0o7777)
    os.replace(tmp, path)


def _read(path: Path | str) -> str:
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise AccountError(f"cannot read {path}: {exc}") from None


def _run(argv: list[str]) -> None:
    result = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise AccountError(f"{' '.join(argv)} failed: {result.stderr.strip()}")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m gateway.sandbox.asterisk_account ROOT", file=sys.stderr)
        return 2
    root = Path(args[0])
    try:
        uid, gid = ensure_account(root)
    except AccountError as exc:
        print(f"asterisk account: {exc}", file=sys.stderr)
        return 1
    print(f"asterisk root: {ROOT_USER} runs as {HOST_ACCOUNT} (uid {uid}, gid {gid})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
