"""Two nodes of the sandbox hotline on this machine (`hotline stack up --nodes 2`): two Asterisk instances and two
gateways on the sandbox's own PostgreSQL cluster and one broker, on ports apart from the session's sandbox stack
(which may run at the same time), for the tests and drills of the shared store."""
from __future__ import annotations

import asyncio
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from gateway.config import Config, load_config
from gateway.sandbox.cluster import node_files, sandbox_postgres_dir
from gateway.sandbox.postgres_cluster import PostgresCluster
from gateway.sandbox.stack import Stack
from gateway.sandbox.testcall import place_call
from gateway.store.database import Store

REPO = Path(__file__).resolve().parents[2]
# The session's sandbox uses the defaults (SIP 5060, AMI 5038, FastAGI 4573, MQTT 1883, agents 5071/5075): these
# nodes start 1000 above, and node 2 a further 100 (gateway/sandbox/cluster.py).
CLUSTER_CONFIG = """\
[gateway]
state_dir = "{state}"
log_level = "DEBUG"
[fastagi]
port = 5573
[ami]
port = 6038
[sip]
port = 6060
rtp_start = 20000
rtp_end = 29999
[speech]
audiosocket_port = 5574
[console]
port = 9088
[workorder]
port = 9089
[mqtt]
port = 2883
ws_port = 10001
[aftercall]
calling_from = "00:00"
calling_until = "24:00"
outbound_contact = "sip:127.0.0.1:6095"

[[agents]]
name = "agent1"
contact = "sip:agent1@127.0.0.1:6071"

[[agents]]
name = "agent2"
contact = "sip:agent2@127.0.0.1:6075"
"""


@dataclass
class TwoNodes:
    base_path: Path
    nodes: list[Config]
    paths: list[Path]

    @property
    def stacks(self) -> list[Stack]:
        return [Stack(cfg, str(path)) for cfg, path in zip(self.nodes, self.paths)]

    def hotline(self, *args: str, node: int = 1, check: bool = True, timeout: float = 300
                ) -> subprocess.CompletedProcess:
        config = self.base_path if node == 0 else self.paths[node - 1]
        result = subprocess.run([sys.executable, "-m", "gateway.cli.main", "--config", str(config), *args],
                                capture_output=True, text=True, timeout=timeout, cwd=REPO)
        if check and result.returncode != 0:
            raise AssertionError(f"hotline {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n"
                                 f"{result.stderr}")
        return result

    def call(self, node: int, number: str, dtmf: str = "", hold_s: float = 6.0) -> dict:
        return asyncio.run(place_call(self.nodes[node - 1], number, dtmf, hold_s=hold_s, full=True))

    def store_query(self, fn):
        async def run():
            async with await Store.open(self.nodes[0].store.location) as store:
                return await fn(store)
        return asyncio.run(run())

    @property
    def postgres(self) -> PostgresCluster:
        return PostgresCluster.attach(sandbox_postgres_dir(self.nodes[0]))


def bring_up(state: Path) -> TwoNodes:
    base = state / "hotline.toml"
    base.write_text(CLUSTER_CONFIG.format(state=state / "state"), encoding="utf-8")
    up = subprocess.run([sys.executable, "-m", "gateway.cli.main", "--config", str(base), "stack", "up", "--nodes",
                         "2"], capture_output=True, text=True, timeout=600, cwd=REPO)
    office = load_config(base)
    paths, _ = node_files(office)
    nodes = TwoNodes(base, [load_config(p) for p in paths], paths)
    if up.returncode != 0:
        take_down(nodes)
        raise AssertionError(f"stack up --nodes 2 failed:\n{up.stdout}\n{up.stderr}")
    return nodes


def take_down(nodes: TwoNodes) -> None:
    """Stop both nodes and remove the sandbox's PostgreSQL cluster (data directory and all)."""
    nodes.hotline("stack", "down", node=0, check=False)
    if nodes.nodes:
        directory = sandbox_postgres_dir(nodes.nodes[0])
        if (directory / "port").exists():
            PostgresCluster.attach(directory).remove()
