"""mosquitto's $7$ password hashes computed in Python (checked against mosquitto_passwd in
tests/integration/test_mosquitto_acl.py)."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.mqtt.broker_config import render_mosquitto, socket_domain
from gateway.mqtt.password_hash import hash_password, password_file_line, verify_password


@given(st.text(min_size=1, max_size=40))
@settings(max_examples=50, deadline=None)
def test_a_hash_verifies_its_own_password_and_no_other(password):
    hashed = hash_password(password)
    assert verify_password(password, hashed)
    assert not verify_password(password + "x", hashed)


def test_the_hash_has_mosquittos_form_and_a_fresh_salt_each_time():
    first, second = hash_password("secret"), hash_password("secret")
    assert first.startswith("$7$101$") and first != second
    assert len(first.split("$")[3]) == 16 and len(first.split("$")[4]) == 88  # 12-byte salt, 64-byte hash


@pytest.mark.parametrize("hashed", ["", "$6$101$abc$def", "$7$x$AAAA$AAAA", "$7$101$!!$AAAA", "$7$0$AAAA$AAAA",
                                    "plain"])
def test_malformed_hashes_never_verify(hashed):
    assert not verify_password("secret", hashed)


@pytest.mark.parametrize("user", ["", "a:b", "a b", "a\nb"])
def test_user_names_that_would_break_the_password_file_are_refused(user):
    with pytest.raises(ValueError):
        password_file_line(user, "secret")


@pytest.mark.parametrize("host,domain", [("127.0.0.1", "ipv4"), ("10.0.0.5", "ipv4"), ("::1", "ipv6")])
def test_the_websockets_listener_is_held_to_the_hosts_address_family(tmp_path, host, domain):
    assert socket_domain(host) == domain
    conf = render_mosquitto(host=host, port=1883, ws_port=9001, password_file=tmp_path / "p", acl_file=tmp_path / "a")
    ws = conf.split("listener 9001 ", 1)[1].splitlines()
    assert ws[:4] == [host, "protocol websockets", f"socket_domain {domain}", "use_username_as_clientid true"]
