"""The ``[cluster]`` settings: which node of the hotline this gateway and its Asterisk are (docs/deploy.md).

A hotline of several nodes runs one Asterisk + gateway pair per node on one shared PostgreSQL store and one broker.
A node's name keeps its processes apart where they share a machine or a broker: its Asterisk's directories and
``systemname`` (which prefixes every uniqueid, so call ids stay unique across nodes), its status file, and its
gateway's MQTT user (the broker takes the user name as the client id: two gateways under one name would
disconnect each other). A hotline of one node has the classic names.
"""
from __future__ import annotations

from dataclasses import dataclass

from gateway.config_checks import ConfigProblem, SettingsReader
from gateway.contract import GATEWAY_USER

__all__ = ["ClusterSection", "gateway_user", "read_cluster"]

MAX_NODES = 9


def gateway_user(node: int) -> str:
    """The broker user of node ``node``'s gateway: node 1's is the classic ``gateway``."""
    return GATEWAY_USER if node == 1 else f"{GATEWAY_USER}-node{node}"


@dataclass(frozen=True)
class ClusterSection:
    node: int
    nodes: int

    @property
    def name(self) -> str:
        """"" for a single node, else "node1", "node2", ..."""
        return "" if self.nodes == 1 else f"node{self.node}"

    @property
    def gateway_user(self) -> str:
        return gateway_user(self.node)

    @property
    def gateway_users(self) -> tuple[str, ...]:
        """Every node's gateway broker user (the broker's password file and ACL list them all)."""
        return tuple(gateway_user(n) for n in range(1, self.nodes + 1))


def read_cluster(r: SettingsReader) -> ClusterSection:
    nodes = r.get("cluster.nodes", int, check=lambda v: 1 <= v <= MAX_NODES, reason=f"must be 1-{MAX_NODES}")
    node = r.get("cluster.node", int, check=lambda v: v >= 1, reason="must be 1 or more")
    if nodes and node and node > nodes:
        r.problems.append(ConfigProblem("cluster.node", f"must be at most cluster.nodes ({nodes})"))
    return ClusterSection(node=node or 1, nodes=nodes or 1)
