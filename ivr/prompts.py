"""The prompt catalogue (name -> Mandarin text) and the offline builder that turns it into 8 kHz WAV files."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import tempfile
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_CATALOGUE_PATH = Path(__file__).parent / "prompts" / "zh.toml"
# espeak-ng 1.51's plain "cmn" voice reads Hanzi as tone-numbered pinyin in English ("ba one" for 八); the
# pinyin variant speaks the same dictionary entries as Mandarin.
DEFAULT_VOICE = "cmn-latn-pinyin"
# Asterisk plays .wav as 8 kHz signed linear; anything else is transcoded on every playback.
SAMPLE_RATE = 8000
SAMPLE_WIDTH = 2
CHANNELS = 1
MANIFEST = "manifest.json"
# Words per minute: espeak's default 175 makes the eight-option welcome 21 s long; 210 keeps it clear at 17 s.
SPEED_WPM = 210
_FORMAT = f"espeak-ng/{SAMPLE_RATE}/{SAMPLE_WIDTH}/{CHANNELS}/{SPEED_WPM}wpm/v1"
_ESPEAK_TIMEOUT_S = 60
_PROMPT_NAME = re.compile(r"[a-z0-9_]+")


class PromptBuildError(Exception):
    """Prompts could not be built; names the prompt (or, for CatalogueError, the file and the prompt)."""


class CatalogueError(PromptBuildError, ValueError):
    """A catalogue that cannot be used; names the file, the prompt and the reason."""


@dataclass
class BuildReport:
    out_dir: Path
    built: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def catalogue_units() -> list[str]:
    """The responsible units of the packaged unit catalogue (ivr/triage/units.toml), as triage loaded it."""
    from ivr.triage.classify import default_units  # noqa: PLC0415 (the triage lexicon loads only when needed)
    return [c.unit for c in default_units().categories]


def load_catalogue(path: str | Path = DEFAULT_CATALOGUE_PATH) -> dict[str, str]:
    file = str(path)
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except OSError as e:
        raise CatalogueError(f"{file}: cannot read: {e.strerror or e}") from e
    except tomllib.TOMLDecodeError as e:
        raise CatalogueError(f"{file}: not valid TOML: {e}") from e
    catalogue: dict[str, str] = {}
    for name, text in raw.items():
        if not _PROMPT_NAME.fullmatch(name):
            raise CatalogueError(f"{file}: {name}: prompt name must match [a-z0-9_]+")
        if not isinstance(text, str) or not text.strip():
            raise CatalogueError(f"{file}: {name}: text must be a non-empty string")
        if text.lstrip().startswith("-"):
            raise CatalogueError(f"{file}: {name}: text must not start with '-' (espeak-ng would take it as an option)")
        catalogue[name] = text
    if not catalogue:
        raise CatalogueError(f"{file}: the catalogue has no prompts")
    return catalogue


def unit_prompt_name(unit: str) -> str:
    """The prompt that speaks a responsible unit's name (built for every unit of the unit catalogue)."""
    return "unit_" + hashlib.sha256(unit.encode()).hexdigest()[:12]


def unit_prompts(units: Iterable[str]) -> dict[str, str]:
    """Prompt name -> text for each unit, so that the progress query (art. 12) can say who handles a ticket."""
    return {unit_prompt_name(u): u for u in sorted(set(units)) if u.strip() and not u.lstrip().startswith("-")}


def prompt_hash(text: str, voice: str) -> str:
    return hashlib.sha256(f"{_FORMAT}\0{voice}\0{text}".encode()).hexdigest()


async def build_prompts(catalogue_path: str | Path, out_dir: str | Path, *, voice: str = DEFAULT_VOICE,
                        force: bool = False, espeak: str = "espeak-ng", jobs: int | None = None,
                        units: Iterable[str] | None = None) -> BuildReport:
    """Synthesise every catalogue entry, and the name of every responsible unit (`units`, by default those of the
    unit catalogue), to `out_dir/<name>.wav` (8 kHz mono 16-bit), skipping unchanged ones.

    `out_dir/manifest.json` records the text+voice hash of each built prompt; it is rewritten even when a prompt
    fails, so a rerun picks up where this one stopped.
    """
    catalogue = {**load_catalogue(catalogue_path), **unit_prompts(catalogue_units() if units is None else units)}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    old = _read_manifest(out)
    manifest: dict[str, str] = {}
    report = BuildReport(out_dir=out)
    todo = []
    for name, text in catalogue.items():
        digest = prompt_hash(text, voice)
        if not force and old.get(name) == digest and (out / f"{name}.wav").is_file():
            manifest[name] = digest
            report.skipped.append(name)
        else:
            todo.append((name, text, digest))

    if todo:
        await _check_voice(espeak, voice, todo[0][0])
    limit = asyncio.Semaphore(jobs or os.cpu_count() or 2)

    async def build_one(name: str, text: str, digest: str) -> None:
        async with limit:
            await _synthesise(name, text, out / f"{name}.wav", voice=voice, espeak=espeak)
        manifest[name] = digest
        report.built.append(name)

    tasks = [asyncio.create_task(build_one(*item)) for item in todo]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    finally:
        _write_manifest(out, {n: manifest[n] for n in catalogue if n in manifest})
    report.built.sort(key=list(catalogue).index)
    return report


async def synthesise_prompt(name: str, text: str, dest: str | Path, *, voice: str = DEFAULT_VOICE,
                            espeak: str = "espeak-ng") -> None:
    """One prompt outside the catalogue (an incident announcement) to ``dest``, as `build_prompts` makes each
    catalogue entry (8 kHz mono 16-bit WAV, espeak-ng in a subprocess, the conversion in an executor); raises
    PromptBuildError."""
    if not text.strip() or text.lstrip().startswith("-"):
        raise PromptBuildError(f"prompt {name!r}: text must be non-empty and not start with '-'")
    await _check_voice(espeak, voice, name)
    await _synthesise(name, text, Path(dest), voice=voice, espeak=espeak)


async def _run(name: str, espeak: str, *args: str) -> tuple[int, bytes, bytes]:
    """(exit status, stdout, stderr) of one espeak-ng run, bounded in time."""
    try:
        proc = await asyncio.create_subprocess_exec(
            espeak, *args,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    except FileNotFoundError as e:
        raise PromptBuildError(f"prompt {name!r}: {espeak} not found (install espeak-ng)") from e
    except OSError as e:
        raise PromptBuildError(f"prompt {name!r}: cannot run {espeak}: {e}") from e
    try:
        stdout, stderr = await asyncio.wait_for(proc.communicate(), _ESPEAK_TIMEOUT_S)
    except TimeoutError:
        raise PromptBuildError(f"prompt {name!r}: {espeak} did not finish in {_ESPEAK_TIMEOUT_S} s") from None
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return proc.returncode, stdout, stderr


async def _check_voice(espeak: str, voice: str, name: str) -> None:
    # espeak-ng falls back to its default (English) voice for an unknown -v and still exits 0: a typo would
    # otherwise fill the prompt directory with English babble.
    status, listing, _ = await _run(name, espeak, "--voices")
    known = set()
    for line in listing.decode(errors="replace").splitlines()[1:]:
        cols = line.split()
        if len(cols) >= 5:
            known |= {cols[1].lower(), cols[3].lower(), cols[4].lower(), cols[4].rsplit("/", 1)[-1].lower()}
            known |= {lang.lower() for lang in re.findall(r"\(([^ )]+) \d+\)", line)}
    if status == 0 and voice.split("+", 1)[0].lower() not in known:
        raise PromptBuildError(f"prompt {name!r}: voice {voice!r} is not installed in {espeak} (see {espeak} --voices)")


async def _synthesise(name: str, text: str, dest: Path, *, voice: str, espeak: str) -> None:
    with tempfile.TemporaryDirectory(prefix="prompt-") as tmp:
        raw = Path(tmp) / "espeak.wav"
        status, _, stderr = await _run(name, espeak, "-v", voice, "-s", str(SPEED_WPM), "-w", str(raw), text)
        if status != 0 or not raw.is_file() or raw.stat().st_size <= 44:
            detail = stderr.decode(errors="replace").strip() or "no audio written"
            raise PromptBuildError(f"prompt {name!r}: {espeak} -v {voice} failed (exit {status}): {detail}")
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, _convert, raw, dest)
        except Exception as e:
            raise PromptBuildError(f"prompt {name!r}: cannot convert espeak-ng output: {e}") from e


def _convert(src: Path, dest: Path) -> None:
    from pydub import AudioSegment  # imported here: pydub pulls in audioop, only the offline build needs it

    audio = AudioSegment.from_wav(str(src))
    audio = audio.set_channels(CHANNELS).set_sample_width(SAMPLE_WIDTH).set_frame_rate(SAMPLE_RATE)
    partial = dest.with_name(f".{dest.name}.partial")
    audio.export(str(partial), format="wav")
    os.replace(partial, dest)  # Asterisk may be playing the old file: never let it see half a WAV


def _read_manifest(out: Path) -> Mapping[str, str]:
    try:
        data = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    prompts = data.get("prompts") if isinstance(data, dict) else None
    return prompts if isinstance(prompts, dict) else {}


def _write_manifest(out: Path, prompts: Mapping[str, str]) -> None:
    partial = out / f".{MANIFEST}.partial"
    partial.write_text(json.dumps({"format": _FORMAT, "prompts": dict(prompts)}, indent=1, sort_keys=True),
                       encoding="utf-8")
    os.replace(partial, out / MANIFEST)
