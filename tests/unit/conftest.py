"""Unit tests are pure: they open no socket, start no process and no browser (those are in tests/integration).

The guard below turns any attempt into a test failure that names what was tried, so a test that needs real I/O
cannot land here by accident. asyncio's own self-pipe (socket.socketpair) stays allowed. A store test on the
``postgres`` backend (tests/conftest.py) talks to the session's PostgreSQL server, as one on ``sqlite`` writes its
file: the database is the store under test, so the guard leaves that test alone.
"""
from __future__ import annotations

import asyncio
import socket
import subprocess

import pytest


class RealIOInUnitTest(AssertionError):
    pass


def _refuse(what: str):
    def refuse(*args, **kwargs):
        raise RealIOInUnitTest(f"a unit test tried to {what}; real I/O belongs in tests/integration")
    return refuse


@pytest.fixture(autouse=True)
def no_real_io(request, monkeypatch):
    callspec = getattr(request.node, "callspec", None)
    if {"postgres_url", "postgres_cluster"} & set(request.fixturenames) or (
            callspec is not None and callspec.params.get("store_location") == "postgres"):
        yield
        return
    monkeypatch.setattr(socket.socket, "bind", _refuse("bind a socket"))
    monkeypatch.setattr(socket.socket, "connect", _refuse("connect a socket"))
    monkeypatch.setattr(socket.socket, "connect_ex", _refuse("connect a socket"))
    monkeypatch.setattr(socket, "create_connection", _refuse("open a connection"))
    monkeypatch.setattr(subprocess.Popen, "__init__", _refuse("start a process"))
    monkeypatch.setattr(asyncio, "create_subprocess_exec", _refuse("start a process"))
    monkeypatch.setattr(asyncio, "create_subprocess_shell", _refuse("start a process"))
    yield


@pytest.fixture
def cli(capsys):
    """``cli(config, module, ...)``: an async runner of ``hotline`` sub-command modules' handlers (registered in
    that order), returning (exit status, stdout, stderr) as the command line would."""
    import argparse

    def make(config, *modules):
        parser = argparse.ArgumentParser(prog="hotline")
        commands = parser.add_subparsers(dest="command", required=True)
        for module in modules:
            module.register(commands)

        async def run(*argv: str):
            args = parser.parse_args(argv)
            capsys.readouterr()
            code = await args.func(args, config)
            out, err = capsys.readouterr()
            return code, out, err

        return run

    return make
