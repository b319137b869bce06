"""Which centres the broker's ACL already serves, and what a reload asks of it (no broker here)."""
import pytest

from gateway.mqtt.broker_config import render_acl
from gateway.mqtt.centre_users import (
    CentreUsers,
    CentreUsersError,
    acl_centres,
    mqtt_centres,
)
from linkage.emergency_list import load_emergency_list, parse_emergency_list

SITUATION = {"id": "fire", "name": "火灾", "centres": ["119"], "menu_key": "2", "keywords": ["着火"]}


def listing(**centres):
    return parse_emergency_list({"situation": [SITUATION], "centres": {
        "119": {"dial": "PJSIP/centre-119", "answer_timeout_s": 20, "push": "mqtt"}, **centres}})


def test_the_acl_serves_exactly_the_centres_rendered_into_it():
    acl = render_acl(agents=["agent1", "agent2"], centres=["110", "119", "water"])
    assert acl_centres(acl) == {"110", "119", "water"}
    assert acl_centres(acl.replace("topic read hotline/linkage/119\n", "")) == {"110", "water"}, \
        "a user without its read topic is not served"
    assert acl_centres("") == set()


def test_only_centres_that_take_mqtt_need_a_broker_user():
    lst = listing(water={"dial": "PJSIP/w", "answer_timeout_s": 20, "push": "http",
                         "http_url": "https://water.example/x"},
                  gas={"dial": "PJSIP/g", "answer_timeout_s": 20, "push": "none"},
                  coast={"dial": "PJSIP/c", "answer_timeout_s": 20, "push": "mqtt"})
    assert mqtt_centres(lst) == ["119", "coast"]
    assert set(mqtt_centres(load_emergency_list(require_centres=True))) == {
        "110", "119", "120", "122", "water", "power", "gas"}


async def test_without_an_acl_a_list_adding_no_mqtt_centre_passes_and_one_adding_one_is_refused(tmp_path):
    users = CentreUsers(tmp_path, agents=["agent1"], pid_file=tmp_path / "mosquitto.pid", host="127.0.0.1", port=1)
    before = listing()
    await users.ensure(listing(), before=before)
    with pytest.raises(CentreUsersError, match="no broker user can be added for centre-coast"):
        await users.ensure(listing(coast={"dial": "PJSIP/c", "answer_timeout_s": 20, "push": "mqtt"}), before=before)


async def test_a_new_centre_with_no_broker_running_is_refused_before_any_file_is_touched(tmp_path):
    acl = tmp_path / "mosquitto" / "acl"
    acl.parent.mkdir()
    acl.write_text(render_acl(agents=["agent1"], centres=["119"]))
    users = CentreUsers(tmp_path, agents=["agent1"], pid_file=tmp_path / "run" / "mosquitto.pid",
                        host="127.0.0.1", port=1)
    await users.ensure(listing())                               # nothing new: nothing asked of the broker
    with pytest.raises(CentreUsersError, match="mosquitto is not running"):
        await users.ensure(listing(coast={"dial": "PJSIP/c", "answer_timeout_s": 20, "push": "mqtt"}))
    assert acl_centres(acl.read_text()) == {"119"} and not (tmp_path / "mosquitto" / "passwd").exists()
