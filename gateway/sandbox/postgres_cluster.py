"""A throwaway PostgreSQL cluster from the Debian package: for the tests and the sandbox stack, never production.

``initdb`` into a fresh data directory, one superuser ``hotline`` with a random password (scram-sha-256 on
loopback TCP, nothing on a shared socket directory), the server on its own port with its socket in the data
directory, started and stopped with ``pg_ctl``; no system service is used or touched. PostgreSQL refuses to run
as root, so under root the cluster runs as the package's ``postgres`` account (the data directory is made its
own). ``fsync=off`` keeps a test run fast; the drills that stop the server stop it cleanly.

``python -m gateway.sandbox.postgres_cluster start DIR [--port N]`` prints the URL; ``stop DIR`` stops it.
"""
from __future__ import annotations

import argparse
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ClusterError", "PostgresCluster", "free_port", "server_binaries"]

SUPERUSER = "hotline"
SERVICE_ACCOUNT = "postgres"


class ClusterError(Exception):
    """The cluster could not be created, started or stopped; the message says why (with the server's log)."""


def server_binaries() -> Path:
    """The newest installed PostgreSQL server's bin directory (Debian: /usr/lib/postgresql/N/bin)."""
    versions = sorted((p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "initdb").exists()),
                      key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    if not versions:
        raise ClusterError("no PostgreSQL server found under /usr/lib/postgresql (apt-get install postgresql)")
    return versions[-1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PostgresCluster:
    """One cluster in ``directory`` (data in ``directory/data``, password in ``directory/password``)."""

    directory: Path
    port: int

    @property
    def data(self) -> Path:
        return self.directory / "data"

    @property
    def password(self) -> str:
        return (self.directory / "password").read_text().strip()

    def url(self, database: str = "hotline") -> str:
        return f"postgresql://{SUPERUSER}:{self.password}@127.0.0.1:{self.port}/{database}"

    @classmethod
    def create(cls, directory: Path, port: int | None = None) -> PostgresCluster:
        """initdb (if the directory holds no cluster yet), start, and create the ``hotline`` database."""
        cluster = cls(Path(directory), port or free_port())
        cluster.directory.mkdir(parents=True, exist_ok=True)
        if not (cluster.data / "PG_VERSION").exists():
            cluster._initdb()
        cluster.start()
        if not cluster.database_exists("hotline"):
            cluster.psql("CREATE DATABASE hotline")
        return cluster

    def _initdb(self) -> None:
        password = self.directory / "password"
        password.write_text(secrets.token_urlsafe(24) + "\n")
        password.chmod(0o600)
        self.data.mkdir(mode=0o700, exist_ok=True)
        pwfile = self.directory / "pwfile"
        shutil.copy(password, pwfile)
        self._own(self.directory, self.data, pwfile)
        try:
            self._run([str(server_binaries() / "initdb"), "-D", str(self.data), "-U", SUPERUSER, "-A",
                       "scram-sha-256", f"--pwfile={pwfile}", "-E", "UTF8", "--locale=C.UTF-8", "--no-instructions"])
        finally:
            pwfile.unlink(missing_ok=True)

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=on -c max_connections=200 -c shared_buffers=64MB")
        log = self.directory / "server.log"
        log.touch()
        self._own(log)
        result = self._run([str(server_binaries() / "pg_ctl"), "-D", str(self.data), "-l", str(log), "-o", options,
                            "-w", "-t", "30", "start"], check=False)
        if result.returncode != 0:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise ClusterError(f"pg_ctl start failed ({result.returncode}): {result.stderr.strip()}\n{tail}")
        (self.directory / "port").write_text(f"{self.port}\n")

    def stop(self, mode: str = "fast") -> None:
        if (self.data / "postmaster.pid").exists():
            self._run([str(server_binaries() / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop"],
                      check=False)

    def running(self) -> bool:
        result = self._run([str(server_binaries() / "pg_ctl"), "-D", str(self.data), "status"], check=False)
        return result.returncode == 0

    def remove(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.directory, ignore_errors=True)

    def psql(self, sql: str, database: str = "postgres") -> str:
        env = {**os.environ, "PGPASSWORD": self.password}
        result = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
                                 "-p", str(self.port), "-U", SUPERUSER, "-d", database, "-c", sql],
                                capture_output=True, text=True, env=env, timeout=60)
        if result.returncode != 0:
            raise ClusterError(f"psql failed: {result.stderr.strip()}")
        return result.stdout.strip()

    def database_exists(self, name: str) -> bool:
        return self.psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'") == "1"

    @classmethod
    def attach(cls, directory: Path) -> PostgresCluster:
        """The cluster already in ``directory`` (its port as last started)."""
        directory = Path(directory)
        return cls(directory, int((directory / "port").read_text()))

    def _own(self, *paths: Path) -> None:
        if os.geteuid() != 0:
            return
        account = pwd.getpwnam(SERVICE_ACCOUNT)
        for path in paths:
            os.chown(path, account.pw_uid, account.pw_gid)

    def _run(self, command: list[str], *, check: bool = True) -> subprocess.CompletedProcess:
        argv = command
        if os.geteuid() == 0:
            try:
                pwd.getpwnam(SERVICE_ACCOUNT)
            except KeyError:
                raise ClusterError(f"PostgreSQL will not run as root and there is no {SERVICE_ACCOUNT!r} "
                                   "account (apt-get install postgresql creates it)") from None
            argv = ["runuser", "-u", SERVICE_ACCOUNT, "--", *argv]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd="/")
        if check and result.returncode != 0:
            raise ClusterError(f"{Path(command[0]).name} failed: {result.stderr.strip() or result.stdout.strip()}")
        return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway.sandbox.postgres_cluster")
    parser.add_argument("action", choices=["start", "stop", "remove"])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--port", type=int)
    args = parser.parse_args(argv)
    try:
        if args.action == "start":
            print(PostgresCluster.create(args.directory, args.port).url())
        elif args.action == "stop":
            PostgresCluster.attach(args.directory).stop()
        else:
            PostgresCluster.attach(args.directory).remove()
    except (ClusterError, OSError) as exc:
        print(f"postgres_cluster: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
