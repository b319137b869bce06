"""Every linked centre that takes its cases over MQTT has a broker user and an ACL entry before an emergency list
naming it takes effect (art. 14: a case nobody may read is a case undelivered; art. 20: only that centre reads it).

`CentreUsers.ensure(list)` is the emergency-list reloader's check: it finds the MQTT centres the broker's ACL does
not know yet, rewrites the password file and the ACL with them added (gateway/mqtt/broker_config.py), tells
mosquitto to read both again (SIGHUP: mosquitto 2 re-reads password_file and acl_file then), and proves it took
them by connecting as each new user and subscribing to its topic. Anything short of that raises
`CentreUsersError`, and the reloader refuses the list, saying why. Users are only ever added here: a centre taken
off the list keeps its user until the next `hotline stack up` renders the files from the configuration.
"""
from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
from collections.abc import Iterable
from pathlib import Path

import aiomqtt

from gateway.contract import CENTRE_PREFIX, GATEWAY_USER, centre_user, linkage_topic
from gateway.mqtt.broker_config import broker_files, write_broker_users
from gateway.mqtt.passwords import mqtt_password

__all__ = ["CentreUsers", "CentreUsersError", "acl_centres", "mqtt_centres"]

log = logging.getLogger(__name__)
_ACL_USER = re.compile(rf"^user {re.escape(CENTRE_PREFIX)}(\S+)$", re.MULTILINE)


class CentreUsersError(Exception):
    """The broker could not be given a centre's user and ACL; the message says which and why."""


def mqtt_centres(emergencies) -> list[str]:
    """The list's centres whose cases go through the broker."""
    return [c.name for c in emergencies.centres if c.push == "mqtt"]


def acl_centres(acl_text: str) -> set[str]:
    """The centres an ACL rendered by broker_config gives their own read topic."""
    return {name for name in _ACL_USER.findall(acl_text)
            if f"user {centre_user(name)}\ntopic read {linkage_topic(name)}\n" in acl_text}


class CentreUsers:
    """Adds broker users for linked centres on a live reload; see the module docstring."""

    def __init__(self, state_dir: Path, *, agents: Iterable[str], pid_file: Path, host: str, port: int,
                 verify_s: float = 5.0, gateways: Iterable[str] = (GATEWAY_USER,)) -> None:
        self.state_dir = Path(state_dir)
        self.agents = list(agents)
        self.gateways = list(gateways)
        self.pid_file = Path(pid_file)
        self.host, self.port = host, port
        self.verify_s = verify_s
        self.password_file, self.acl_file = broker_files(self.state_dir)

    async def ensure(self, emergencies, *, before=None) -> None:
        """Raise CentreUsersError unless every MQTT centre of `emergencies` can log in and read its topic.
        `before`: the list in force; without an ACL to read (a broker this gateway does not configure), only a
        list that adds MQTT centres to it is refused."""
        try:
            acl = await asyncio.to_thread(self.acl_file.read_text, encoding="utf-8")
        except OSError as exc:
            added = sorted(set(mqtt_centres(emergencies)) - set(mqtt_centres(before) if before else ()))
            if before is not None and not added:
                return
            raise CentreUsersError(f"the broker's ACL {self.acl_file} cannot be read ({exc.strerror}): no broker "
                                   f"user can be added for {', '.join(centre_user(n) for n in added)}") from None
        known = acl_centres(acl)
        new = [name for name in mqtt_centres(emergencies) if name not in known]
        if not new:
            return
        users = ", ".join(centre_user(n) for n in new)
        pid = await asyncio.to_thread(self._broker_pid, users)
        try:
            await asyncio.to_thread(write_broker_users, self.state_dir, agents=self.agents,
                                    centres=sorted(known | set(new)), gateways=self.gateways)
        except (OSError, RuntimeError, ValueError) as exc:
            raise CentreUsersError(f"broker users {users} could not be written to {self.password_file} and "
                                   f"{self.acl_file}: {exc}") from None
        try:
            os.kill(pid, signal.SIGHUP)
        except OSError as exc:
            raise CentreUsersError(f"broker users {users} written, but mosquitto (pid {pid}) could not be told "
                                   f"to read them (SIGHUP: {exc.strerror})") from None
        for name in new:
            await self._verify(name)
        log.info("event=broker_centre_users_added users=%s broker_pid=%d", users.replace(" ", ""), pid)

    def _broker_pid(self, users: str) -> int:
        try:
            pid = int(self.pid_file.read_text().strip())
            os.kill(pid, 0)
        except (OSError, ValueError):
            raise CentreUsersError(f"mosquitto is not running (no live pid in {self.pid_file}): broker users "
                                   f"{users} cannot be made to take effect") from None
        return pid

    async def _verify(self, name: str) -> None:
        """Log in as the centre and subscribe to its topic, retrying while mosquitto reloads."""
        user, topic = centre_user(name), linkage_topic(name)
        password = await asyncio.to_thread(mqtt_password, self.state_dir, user)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.verify_s
        problem = "not tried"
        while True:
            try:
                async with aiomqtt.Client(self.host, self.port, username=user, password=password,
                                          identifier=f"{user}-provisioning-check", timeout=2) as client:
                    granted = await client.subscribe(topic, qos=1, timeout=2)
                if all(_granted(code) for code in granted):
                    return
                problem = f"subscribing to {topic} was refused"
            except aiomqtt.MqttError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            if loop.time() >= deadline:
                raise CentreUsersError(f"the broker does not accept {user} reading {topic} after the reload "
                                       f"({problem})")
            await asyncio.sleep(0.2)


def _granted(code) -> bool:
    """A SUBACK return code (MQTT 3.1.1: 0-2 granted, 0x80 failure) or an MQTT 5 reason code."""
    value = getattr(code, "value", code)
    return isinstance(value, int) and value < 0x80
