"""Asterisk runs as its own system account (the same uid on the host and in its root), never as another's."""
import json
import os
import pwd
import stat
from pathlib import Path

from gateway.sandbox.asterisk_account import HOST_ACCOUNT, ensure_account, process_uid

ROOT_PASSWD = ("root:x:0:0:root:/root:/bin/bash\n_apt:x:42:65534::/nonexistent:/usr/sbin/nologin\n"
               "asterisk:x:101:101:Asterisk PBX daemon:/var/lib/asterisk:/usr/sbin/nologin\n")
ROOT_GROUP = "root:x:0:\ndialout:x:20:asterisk\nasterisk:x:101:\n"


def make_root(base: Path) -> Path:
    """A root as debootstrap leaves it: Debian's asterisk user at 101/101 and files of its own."""
    root = base / "root"
    for inner in ("etc", "var/lib/asterisk", "var/log/asterisk", "etc/asterisk", "usr/sbin"):
        (root / inner).mkdir(parents=True, exist_ok=True)
    (root / "etc/passwd").write_text(ROOT_PASSWD)
    (root / "etc/group").write_text(ROOT_GROUP)
    (root / "etc/passwd").chmod(0o644)
    (root / "var/lib/asterisk/astdb.sqlite3").write_text("db")
    (root / "var/log/asterisk/messages.log").write_text("log")
    (root / "etc/asterisk/manager.conf").write_text("conf")
    (root / "var/lib/asterisk/link").symlink_to("astdb.sqlite3")
    (root / "usr/sbin/asterisk").write_text("binary")
    for inner in ("var/lib/asterisk", "var/lib/asterisk/astdb.sqlite3", "var/log/asterisk",
                  "var/log/asterisk/messages.log"):
        os.chown(root / inner, 101, 101)
    os.lchown(root / "var/lib/asterisk/link", 101, 101)
    os.chown(root / "etc/asterisk/manager.conf", 0, 101)  # root-owned, readable by the asterisk group
    return root


def owner(path: Path) -> tuple[int, int]:
    st = os.lstat(path)
    return st.st_uid, st.st_gid


def test_a_root_with_debians_uid_is_moved_to_the_dedicated_account_and_its_files_reowned(tmp_path):
    root = make_root(tmp_path)
    uid, gid = ensure_account(root, log=print)
    account = pwd.getpwnam(HOST_ACCOUNT)
    assert (account.pw_uid, account.pw_gid) == (uid, gid)
    assert 100 <= uid < 1000 and uid != 101  # a system uid, not the one Debian gave in the root
    assert account.pw_shell == "/usr/sbin/nologin" and not Path(account.pw_dir).exists()
    assert f"asterisk:x:{uid}:{gid}:Asterisk PBX daemon:" in (root / "etc/passwd").read_text()
    assert f"asterisk:x:{gid}:\n" in (root / "etc/group").read_text()
    assert stat.S_IMODE((root / "etc/passwd").stat().st_mode) == 0o644
    for inner in ("var/lib/asterisk", "var/lib/asterisk/astdb.sqlite3", "var/log/asterisk/messages.log",
                  "var/lib/asterisk/link"):
        assert owner(root / inner) == (uid, gid), inner
    assert owner(root / "etc/asterisk/manager.conf") == (0, gid)
    assert owner(root / "usr/sbin/asterisk") == (0, 0)
    before = (root / "etc/passwd").read_text(), (root / "etc/group").read_text()
    assert ensure_account(root, log=print) == (uid, gid)  # a second run changes nothing
    assert ((root / "etc/passwd").read_text(), (root / "etc/group").read_text()) == before


def test_asterisk_runs_as_the_dedicated_host_account_and_stack_status_says_so(sandbox):
    pid = sandbox.stack.asterisk.pid()
    assert pid is not None
    status_text = Path(f"/proc/{pid}/status").read_text()
    uid = process_uid(status_text)
    account = pwd.getpwnam(HOST_ACCOUNT)
    print(f"asterisk pid {pid} runs as uid {uid} ({pwd.getpwuid(uid).pw_name}); {HOST_ACCOUNT} is {account.pw_uid}")
    assert uid == account.pw_uid
    assert Path(f"/proc/{pid}/exe").resolve().name == "asterisk"  # the chroot exec'd Asterisk itself
    result = sandbox.hotline("stack", "status")
    line = next(line for line in result.stdout.splitlines() if line.startswith("asterisk_account"))
    assert f"uid={uid} host_user={HOST_ACCOUNT}" in line and "ok=True" in line, line
    status = json.loads(sandbox.hotline("stack", "status", "--json").stdout)
    assert status["asterisk_account"]["running_uid"] == uid and status["asterisk_account"]["ok"]
