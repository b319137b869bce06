"""The dedicated host account of Asterisk: free ids, the renumbered root files, and the check `stack status` shows."""
import pytest

from gateway.sandbox.asterisk_account import (
    HOST_ACCOUNT, AccountError, check_account, pick_free_id, process_uid, read_ids, renumbered,
)

ROOT_PASSWD = ("root:x:0:0:root:/root:/bin/bash\n_apt:x:42:65534::/nonexistent:/usr/sbin/nologin\n"
               "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
               "asterisk:x:101:101:Asterisk PBX daemon:/var/lib/asterisk:/usr/sbin/nologin\n")
ROOT_GROUP = "root:x:0:\ndialout:x:20:asterisk\naudio:x:29:asterisk\nusers:x:100:\nasterisk:x:101:\n"
HOST_PASSWD = ("root:x:0:0:root:/root:/bin/bash\nsystemd-network:x:998:998::/:/usr/sbin/nologin\n"
               "postgres:x:101:104:PostgreSQL administrator,,,:/var/lib/postgresql:/bin/bash\n")
HOST_WITH_ACCOUNT = HOST_PASSWD + f"{HOST_ACCOUNT}:x:997:997:Asterisk:/nonexistent:/usr/sbin/nologin\n"


def test_ids_are_read_from_passwd_and_group_lines_and_damaged_lines_are_left_out():
    assert read_ids(ROOT_PASSWD)["asterisk"] == (101, 101)
    assert read_ids(ROOT_GROUP)["dialout"] == (20, 20)
    assert read_ids("# comment\n+::::::\nbroken\nx:x:abc:1\nok:x:5:6:::\n") == {"ok": (5, 6)}


def test_the_highest_system_id_free_on_both_sides_is_picked():
    assert pick_free_id({999, 998}, {997}) == 996
    assert pick_free_id(set(), set()) == 999
    with pytest.raises(AccountError):
        pick_free_id(set(range(100, 1000)))


def test_renumbering_moves_only_the_asterisk_user_and_its_group():
    passwd, group = renumbered(ROOT_PASSWD, ROOT_GROUP, "asterisk", 997, 995)
    assert "asterisk:x:997:995:Asterisk PBX daemon:/var/lib/asterisk:/usr/sbin/nologin\n" in passwd
    assert "asterisk:x:995:\n" in group
    assert "dialout:x:20:asterisk\n" in group  # memberships by name are untouched
    assert passwd.replace("997:995", "101:101") == ROOT_PASSWD
    assert group.replace("asterisk:x:995:", "asterisk:x:101:") == ROOT_GROUP
    with pytest.raises(AccountError):
        renumbered("root:x:0:0::/:/bin/sh\n", ROOT_GROUP, "asterisk", 997, 997)


def test_asterisk_with_the_uid_of_the_hosts_postgres_is_reported_by_name():
    check = check_account(HOST_PASSWD, ROOT_PASSWD)
    assert not check.ok
    assert check.root_uid == 101 and check.host_name == "postgres"
    assert "postgres" in check.problem and HOST_ACCOUNT in check.problem and "setup.sh" in check.problem


def test_a_root_not_yet_renumbered_is_reported_even_when_the_account_exists():
    check = check_account(HOST_WITH_ACCOUNT, ROOT_PASSWD)
    assert not check.ok and "uid 101 (the host's postgres), not hotline-asterisk's 997" in check.problem


def test_the_renumbered_root_and_the_running_asterisk_on_the_account_are_ok():
    passwd, _ = renumbered(ROOT_PASSWD, ROOT_GROUP, "asterisk", 997, 997)
    check = check_account(HOST_WITH_ACCOUNT, passwd, running_uid=997)
    assert check.ok and check.problem is None
    assert check.as_dict() == {"uid": 997, "host_user": HOST_ACCOUNT, "expected": HOST_ACCOUNT, "running_uid": 997,
                               "ok": True, "problem": None}
    assert check_account(HOST_WITH_ACCOUNT, passwd).ok  # not running: the root decides


def test_an_asterisk_running_under_another_uid_is_reported():
    passwd, _ = renumbered(ROOT_PASSWD, ROOT_GROUP, "asterisk", 997, 997)
    check = check_account(HOST_WITH_ACCOUNT, passwd, running_uid=101)
    assert not check.ok and "running Asterisk has uid 101" in check.problem


def test_a_root_without_an_asterisk_user_is_reported():
    assert "no asterisk user" in check_account(HOST_WITH_ACCOUNT, "root:x:0:0::/:/bin/sh\n").problem


def test_the_real_uid_is_read_from_proc_status():
    assert process_uid("Name:\tasterisk\nUid:\t997\t997\t997\t997\nGid:\t997\t997\t997\t997\n") == 997
    assert process_uid("Name:\tx\n") is None
