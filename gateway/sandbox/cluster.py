"""`hotline stack up --nodes N` and `--postgres`: the sandbox stack on the shared PostgreSQL store, as one node or
as several Asterisk + gateway pairs on one machine (docs/deploy.md).

The store is then a PostgreSQL cluster of the sandbox's own from the Debian package
(`gateway.sandbox.postgres_cluster`), unless the configuration names one (``store.url``). Its data directory is
``/var/tmp/hotline-pg-<hash of the state directory>``: PostgreSQL runs as the ``postgres`` account, which may not
enter a state directory private to root. Each node gets a file
``{state_dir}/cluster/nodeN.toml`` that extends the office's configuration and changes only what must differ on one
machine: its ports (node N adds ``100 * (N - 1)`` to SIP, AMI, FastAGI, AudioSocket, console, work-order API,
metrics page (unless off) and RTP), its Asterisk's recording spool, its name ([cluster]); every node names the next
one's FastAGI as its ``fastagi.backup``, so each Asterisk reaches a second gateway. The broker, the simulated agents and the state
directory are shared. ``{state_dir}/run/cluster.json`` remembers the node files so that `stack down` and
`stack status` find every node.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from gateway.config import Config, load_config
from gateway.sandbox.postgres_cluster import PostgresCluster

__all__ = ["NODE_PORT_STEP", "cluster_file", "node_files", "node_overrides", "postgres_for", "running_nodes",
           "sandbox_postgres_dir", "write_node_files"]

NODE_PORT_STEP = 100


def cluster_file(config: Config) -> Path:
    return config.state_dir / "run" / "cluster.json"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(str(value), ensure_ascii=False)     # a TOML basic string is a JSON string


def node_overrides(config: Config, node: int, nodes: int, store_url: str) -> dict[str, dict[str, Any]]:
    """What node ``node`` of ``nodes`` changes in the office's configuration (pure)."""
    if nodes == 1:
        return {"store": {"url": store_url}}
    step = NODE_PORT_STEP * (node - 1)
    following = node % nodes + 1
    spool = f"/var/spool/asterisk-node{node}/hotline"
    return {
        "cluster": {"node": node, "nodes": nodes},
        "store": {"url": store_url},
        "fastagi": {"port": config.fastagi.port + step,
                    "backup": f"{config.fastagi.host}:{config.fastagi.port + NODE_PORT_STEP * (following - 1)}"
                    if nodes > 1 else config.fastagi.backup},
        "sip": {"port": config.sip.port + step, "rtp_start": config.sip.rtp_start + step * 10,
                "rtp_end": config.sip.rtp_start + step * 10 + (config.sip.rtp_end - config.sip.rtp_start) // 10},
        "ami": {"port": config.ami.port + step},
        "console": {"port": config.console.port + step},
        "workorder": {"port": config.workorder.port + step},
        "metrics": {"port": config.metrics.port + step if config.metrics.port else 0},   # 0 stays off
        "speech": {"audiosocket_port": config.speech.audiosocket_port + step, "asterisk_recording_dir": spool},
    }


def _render(extends: str | None, tables: dict[str, dict[str, Any]]) -> str:
    lines = ["# Written by `hotline stack up` (gateway/sandbox/cluster.py): one node of the sandbox hotline."]
    if extends:
        lines.append(f"extends = {_toml_value(extends)}")
    for table, values in tables.items():
        lines += ["", f"[{table}]", *(f"{key} = {_toml_value(v)}" for key, v in values.items())]
    return "\n".join(lines) + "\n"


def sandbox_postgres_dir(config: Config) -> Path:
    digest = hashlib.sha256(str(config.state_dir.resolve()).encode()).hexdigest()[:12]
    return Path("/var/tmp") / f"hotline-pg-{digest}"


def postgres_for(config: Config) -> str:
    """The store URL: the configured one, else the sandbox's own cluster (created or started as needed)."""
    if config.store.url:
        return config.store.url
    return PostgresCluster.create(sandbox_postgres_dir(config)).url()


def write_node_files(config: Config, config_path: str | None, nodes: int, store_url: str) -> list[Path]:
    """The node files (mode 0600: they hold the store URL) and cluster.json."""
    directory = config.state_dir / "cluster"
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    extends = str(Path(config_path).resolve()) if config_path else None
    paths = []
    for node in range(1, nodes + 1):
        path = directory / f"node{node}.toml"
        path.touch(mode=0o600)
        path.write_text(_render(extends, node_overrides(config, node, nodes, store_url)), encoding="utf-8")
        paths.append(path)
    record = cluster_file(config)
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps({"nodes": [str(p) for p in paths],
                                  "postgres": None if config.store.url else str(sandbox_postgres_dir(config))}))
    return paths


def node_files(config: Config) -> tuple[list[Path], Path | None]:
    """The node files of the stack last brought up with --nodes/--postgres, and its own PostgreSQL directory."""
    try:
        record = json.loads(cluster_file(config).read_text())
    except (OSError, ValueError):
        return [], None
    return [Path(p) for p in record.get("nodes", [])], Path(record["postgres"]) if record.get("postgres") else None


def running_nodes(config: Config) -> list[tuple[Config, Path]]:
    """(configuration, file) of every node of the recorded stack."""
    return [(load_config(path), path) for path in node_files(config)[0] if path.exists()]
