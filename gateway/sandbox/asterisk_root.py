"""The Asterisk 22 root (Debian sid, debootstrapped once and cached) the sandbox stack runs Asterisk in.

Asterisk runs chrooted as the ``asterisk`` user (never ``-U root``: it drops capabilities and cannot write its
astdb). It shares loopback with the host, so it reaches the gateway's FastAGI on 127.0.0.1. Several instances
(the nodes of `hotline stack up --nodes N`) share one root, each with its own directories (``asterisk_dirs``)
and its own ``asterisk.conf``, which every command names with ``-C``.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from gateway.asterisk_render import asterisk_dirs, write_all
from gateway.config import Config

BUILD_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "build-asterisk-root.sh"
# Stock files kept beside ours: tone tables for ringback, and the (all-default) files that core and res_pjsip
# complain about when missing; the stock tree moves to /etc/asterisk.dist once, so a stock file for a module we
# do not load cannot surprise us.
STOCK_KEPT = ("indications.conf", "acl.conf", "udptl.conf", "pjproject.conf")


class AsteriskRootError(Exception):
    """The Asterisk root is missing or cannot be prepared."""


class AsteriskRoot:
    def __init__(self, root: Path, instance: str = "") -> None:
        self.root = root
        self.instance = instance
        self.dirs = asterisk_dirs(instance)

    def path(self, inner: str) -> Path:
        return self.root / inner.lstrip("/")

    @property
    def exists(self) -> bool:
        return self.path("/usr/sbin/asterisk").exists()

    def build(self) -> None:
        """Debootstrap the root from Debian sid (about a minute, 0.5 GB), unless it is already there."""
        if self.exists:
            return
        result = subprocess.run(["bash", str(BUILD_SCRIPT), str(self.root)])
        if result.returncode != 0 or not self.exists:
            raise AsteriskRootError(f"building the Asterisk root {self.root} failed (see output above)")

    def _ids(self) -> tuple[int, int]:
        """uid/gid of the root's own asterisk user (the chroot has its own /etc/passwd)."""
        uid = gid = None
        for line in self.path("/etc/passwd").read_text().splitlines():
            parts = line.split(":")
            if parts[0] == "asterisk":
                uid, gid = int(parts[2]), int(parts[3])
        if uid is None:
            raise AsteriskRootError(f"{self.root}: no asterisk user in the root's /etc/passwd")
        return uid, gid

    def install_config(self, config: Config, ami_secret: str) -> list[Path]:
        etc = self.path(self.dirs["ast_etc_dir"])
        dist = self.path("/etc/asterisk.dist")
        classic = self.path("/etc/asterisk")
        if not dist.exists() and classic.exists():
            classic.rename(dist)
        etc.mkdir(mode=0o755, exist_ok=True)
        for stale in etc.iterdir():
            if stale.is_dir() and not stale.is_symlink():
                shutil.rmtree(stale)
            else:
                stale.unlink()
        for name in STOCK_KEPT:
            if (dist / name).exists():
                shutil.copy2(dist / name, etc / name)
        _, gid = self._ids()
        return write_all(config, ami_secret, etc, owner=(0, gid))

    def install_prompts(self, build_dir: Path, asterisk_prompt_dir: str) -> int:
        """Copy the generated prompt WAVs to where the dialplan/AGI plays them from; returns the count."""
        target = self.path(asterisk_prompt_dir)
        target.mkdir(parents=True, exist_ok=True)
        count = 0
        for wav in sorted(build_dir.glob("*.wav")):
            shutil.copy2(wav, target / wav.name)
            count += 1
        return count

    def mount(self, *, extra_dirs: list[str] = ()) -> None:
        for inner, args in (("/dev", ["--bind", "/dev"]), ("/proc", ["-t", "proc", "proc"])):
            point = self.path(inner)
            if not _is_mountpoint(point):
                subprocess.run(["mount", *args, str(point)], check=True)
        uid, gid = self._ids()
        own = [self.dirs[key] for key in ("ast_run_dir", "ast_log_dir", "ast_db_dir", "ast_spool_dir")]
        for inner in ("/var/lib/asterisk", *own, *extra_dirs):
            p = self.path(inner)
            p.mkdir(parents=True, exist_ok=True)
            _chown_tree_top(p, uid, gid)

    def processes_inside(self) -> list[int]:
        """Pids of the processes running chrooted in this root (another instance's Asterisk, say)."""
        target, pids = str(self.root.resolve()), []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if os.readlink(entry / "root") == target:
                        pids.append(int(entry.name))
                except OSError:
                    continue
        return pids

    def unmount(self) -> None:
        """Unmount /proc and /dev of the root, unless another instance still runs in it."""
        if self.processes_inside():
            return
        for inner in ("/proc", "/dev"):
            point = self.path(inner)
            if _is_mountpoint(point):
                subprocess.run(["umount", "-l", str(point)], check=False)

    def command_argv(self) -> list[str]:
        """Foreground Asterisk as the root's asterisk user."""
        return ["chroot", "--userspec=asterisk:asterisk", str(self.root), "/usr/sbin/asterisk", *self._conf(), "-f",
                "-n"]

    def cli(self, command: str, *, timeout: float = 10.0) -> subprocess.CompletedProcess:
        return subprocess.run(["chroot", str(self.root), "/usr/sbin/asterisk", *self._conf(), "-rx", command],
                              capture_output=True, text=True, timeout=timeout)

    def _conf(self) -> list[str]:
        return ["-C", f"{self.dirs['ast_etc_dir']}/asterisk.conf"] if self.instance else []

    def fully_booted(self) -> bool:
        try:
            r = self.cli("core waitfullybooted", timeout=5)
        except subprocess.TimeoutExpired:
            return False
        return r.returncode == 0 and "fully booted" in r.stdout.lower()


def _is_mountpoint(path: Path) -> bool:
    target = str(path.resolve())
    try:
        with open("/proc/mounts") as f:
            return any(line.split()[1] == target for line in f)
    except OSError:
        return False


def _chown_tree_top(path: Path, uid: int, gid: int) -> None:
    os.chown(path, uid, gid)
    for child in path.iterdir():
        try:
            os.chown(child, uid, gid)
        except OSError:
            pass

