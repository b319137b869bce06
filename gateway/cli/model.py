"""`hotline model install PATH` and `hotline model check [PATH]`: put a vosk speech model where the gateway loads it.

Models come as the zip files alphacephei publishes (vosk-model-small-cn-0.22.zip: one top-level folder), as a
.tar.gz/.tgz, or as an unpacked directory. Installing extracts into a hidden staging directory next to the
destination, finds the model root inside, checks it, and renames it into place (one rename on one filesystem: the
gateway never sees half a model). Exit status: 0 done, 1 nothing to do (already installed, no model configured),
2 bad input (missing path, not an archive, not a vosk model, an unsafe archive).
"""
from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import stat
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

from ivr.speech.recogniser import Recogniser, SpeechModelError, check_model_dir

# vosk-model-cn-0.22 unpacks to about 2 GB; nothing legitimate comes near this
MAX_MODEL_BYTES = 8 * 1024**3
MAX_MEMBERS = 10_000
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".zip")


class InstallError(Exception):
    """The input cannot be installed; the message says why and names the input."""


class AlreadyInstalled(InstallError):
    """The destination directory exists; installing never replaces a model the gateway may be using."""


def register(subparsers: Any) -> None:
    model = subparsers.add_parser("model", help="offline speech-recognition models (vosk)")
    commands = model.add_subparsers(dest="model_command", metavar="COMMAND", required=True)

    install_ = commands.add_parser("install", help="install a vosk model from a .zip, .tar.gz/.tgz or directory")
    install_.add_argument("path", metavar="PATH")
    install_.add_argument("--dest", metavar="DIR", help="models directory (default: STATE_DIR/models)")
    install_.add_argument("--name", help="directory name under DIR (default: the model's own folder name)")
    install_.set_defaults(func=install)

    check_ = commands.add_parser("check", help="is PATH (default: the configured [speech] model) a vosk model?")
    check_.add_argument("path", metavar="PATH", nargs="?")
    check_.add_argument("--load", action="store_true", help="also load it with vosk (takes seconds)")
    check_.set_defaults(func=check)


# -- handlers --------------------------------------------------------------------------------------------------


async def install(args: argparse.Namespace, config: Any) -> int:
    source = Path(args.path).expanduser()
    if args.name is not None and not _is_plain_name(args.name):
        print(f"model install: --name {args.name!r} must be a plain directory name", file=sys.stderr)
        return 2
    models_dir = Path(args.dest).expanduser() if args.dest else Path(config.state_dir) / "models"
    try:
        target = await asyncio.to_thread(_install, source, models_dir, args.name)
    except InstallError as exc:
        print(f"model install: {exc}", file=sys.stderr)
        return 1 if isinstance(exc, AlreadyInstalled) else 2
    print(f"installed {target} ({_size_mb(target)} MB)")
    print("put this in the config file, then run `hotline config check`:")
    print("[speech]")
    print(f'model = "{target}"')
    return 0


async def check(args: argparse.Namespace, config: Any) -> int:
    path = args.path or getattr(getattr(config, "speech", None), "model", None)
    if not path:
        print("model check: no [speech] model configured: the gateway runs without transcripts", file=sys.stderr)
        return 1
    path = Path(path).expanduser()
    try:
        check_model_dir(path)
        if args.load:
            recogniser = Recogniser(path, max_streams=0)
            started = time.perf_counter()
            try:
                await recogniser.load()
            finally:
                recogniser.close()
            print(f"loaded in {time.perf_counter() - started:.1f} s")
    except SpeechModelError as exc:
        print(f"model check: {exc}", file=sys.stderr)
        return 2
    print(f"ok {path} ({_size_mb(path)} MB)")
    return 0


# -- installing ------------------------------------------------------------------------------------------------


def _install(source: Path, models_dir: Path, name: str | None) -> Path:
    if not source.exists():
        raise InstallError(f"{source} does not exist")
    kind = _kind(source)
    if kind == "dir":
        try:  # fail before copying hundreds of MB
            check_model_dir(source)
        except SpeechModelError as exc:
            raise InstallError(str(exc)) from None
    models_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".install-", dir=models_dir))
    try:
        unpacked = staging / "unpacked"
        if kind == "dir":
            shutil.copytree(source, unpacked, symlinks=False)
            root = unpacked
            default_name = source.resolve().name
        else:
            unpacked.mkdir()
            (_extract_zip if kind == "zip" else _extract_tar)(source, unpacked)
            root = _find_model_root(source, unpacked)
            default_name = root.name if root != unpacked else _strip_suffix(source.name)
        target = models_dir / (name or default_name)
        if target.exists():
            raise AlreadyInstalled(f"{target} already exists: remove it first or choose another --name")
        os.rename(root, target)  # same filesystem as the staging directory: atomic
        return target
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _kind(source: Path) -> str:
    if source.is_dir():
        return "dir"
    # by content: a download renamed to "model" is still a zip
    if zipfile.is_zipfile(source):
        return "zip"
    if tarfile.is_tarfile(source):
        return "tar"
    raise InstallError(f"{source} is neither a directory nor a {', '.join(ARCHIVE_SUFFIXES)} archive")


def _find_model_root(source: Path, unpacked: Path) -> Path:
    """The archive's top level, or the one folder (at most 3 levels down) that is a vosk model."""
    candidates = [unpacked] + sorted(p for depth in ("*", "*/*", "*/*/*") for p in unpacked.glob(depth)
                                     if p.is_dir() and not p.is_symlink())
    roots = []
    for candidate in candidates:
        try:
            check_model_dir(candidate)
        except SpeechModelError:
            continue
        roots.append(candidate)
    if len(roots) == 1:
        return roots[0]
    if roots:
        found = ", ".join(str(r.relative_to(unpacked)) for r in roots)
        raise InstallError(f"{source} holds several models ({found}): unpack it and install one directory")
    top = list(unpacked.iterdir())
    likely = top[0] if len(top) == 1 and top[0].is_dir() else unpacked
    missing = "am/final.mdl, conf/mfcc.conf, graph/HCLG.fst (or graph/HCLr.fst and graph/Gr.fst)"
    try:
        check_model_dir(likely)
    except SpeechModelError as exc:
        missing = str(exc).split("missing ", 1)[-1]
    raise InstallError(f"{source} is not a vosk model: missing {missing}")


def _extract_zip(source: Path, dest: Path) -> None:
    try:
        _extract_zip_members(source, dest)
    except (zipfile.BadZipFile, EOFError, OSError) as exc:  # OSError: also a name listed twice ("xb")
        raise InstallError(f"{source}: unreadable archive ({exc})") from None


def _extract_zip_members(source: Path, dest: Path) -> None:
    with zipfile.ZipFile(source) as archive:
        members = archive.infolist()
        _check_counts(source, len(members), sum(m.file_size for m in members))
        for member in members:
            relative = _safe_relative(source, member.filename)
            if stat.S_ISLNK(member.external_attr >> 16):
                raise InstallError(f"{source}: {member.filename} is a symbolic link; a model has none")
            if relative is None:
                continue
            out = dest / relative
            if member.is_dir():
                out.mkdir(parents=True, exist_ok=True)
                continue
            out.parent.mkdir(parents=True, exist_ok=True)
            # ZipExtFile stops at the declared size and checks the CRC, so a lying header cannot overrun the cap
            with archive.open(member) as src, open(out, "xb") as dst:
                shutil.copyfileobj(src, dst, 1024 * 1024)


def _extract_tar(source: Path, dest: Path) -> None:
    try:
        with tarfile.open(source) as archive:
            members = archive.getmembers()
            _check_counts(source, len(members), sum(m.size for m in members if m.isfile()))
            for member in members:
                _safe_relative(source, member.name)
                if member.issym() or member.islnk():
                    raise InstallError(f"{source}: {member.name} is a link; a model has none")
                if not (member.isfile() or member.isdir()):
                    raise InstallError(f"{source}: {member.name} is a device, fifo or other special file")
            # the "data" filter refuses again what is checked above, and drops modes such as setuid
            archive.extractall(dest, members=members, filter="data")
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise InstallError(f"{source}: unreadable archive ({exc})") from None


def _safe_relative(source: Path, name: str) -> PurePosixPath | None:
    """The member's path inside the destination, or InstallError for an absolute path or one that climbs out."""
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise InstallError(f"{source}: {name!r} is an absolute path; refusing to extract")
    path = PurePosixPath(name.replace("\\", "/"))
    if ".." in path.parts:
        raise InstallError(f"{source}: {name!r} climbs out of the destination (..); refusing to extract")
    parts = [p for p in path.parts if p not in ("", ".")]
    return PurePosixPath(*parts) if parts else None


def _check_counts(source: Path, members: int, total_bytes: int) -> None:
    if members > MAX_MEMBERS:
        raise InstallError(f"{source}: {members} entries (limit {MAX_MEMBERS}); not a vosk model archive")
    if total_bytes > MAX_MODEL_BYTES:
        raise InstallError(f"{source}: unpacks to {total_bytes / 1024**3:.1f} GiB "
                           f"(limit {MAX_MODEL_BYTES / 1024**3:.0f} GiB); refusing to extract")


def _is_plain_name(name: str) -> bool:
    return bool(name) and name not in (".", "..") and not name.startswith(".") and "/" not in name \
        and "\\" not in name


def _strip_suffix(filename: str) -> str:
    for suffix in ARCHIVE_SUFFIXES:
        if filename.endswith(suffix):
            return filename[:-len(suffix)]
    return filename


def _size_mb(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) // (1024 * 1024)
