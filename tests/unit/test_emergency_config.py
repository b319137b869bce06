"""The emergency list's confirmation flag and centres table, validated with file, field and reason."""

import pytest

from linkage.emergency_list import (DEFAULT_EMERGENCY_PATH, Centre, EmergencyListError, load_emergency_list,
                                    parse_emergency_list)

SITUATION = {"id": "fire", "name": "火灾", "centres": ["119"], "menu_key": "2", "keywords": ["着火"]}
CENTRE = {"dial": "PJSIP/centre-119", "answer_timeout_s": 20, "push": "mqtt"}


def parse(situation=None, **centres):
    return parse_emergency_list({"situation": [situation or SITUATION], "centres": centres or {"119": CENTRE}},
                                source="em.toml")


def test_packaged_list_configures_every_centre_it_names_with_dial_timeout_and_push():
    lst = load_emergency_list(require_centres=True)
    assert {c.name for c in lst.centres} == {"110", "119", "120", "122", "water", "power", "gas"}
    for situation in lst.situations:
        assert [c.name for c in lst.targets(situation.id)] == list(situation.centres)
        assert situation.confirm is True
    fire = lst.get_centre("119")
    assert fire.dial == "PJSIP/centre-119" and fire.push == "mqtt" and 0 < fire.answer_timeout_s <= 300


def test_centre_defaults_and_an_http_centre():
    lst = parse(**{"119": CENTRE, "water": {"dial": "PJSIP/centre-water&PJSIP/water-backup", "answer_timeout_s": 30.5,
                                            "push": "http", "http_url": "https://water.example/cases",
                                            "http_retries": 0, "http_token_env": "WATER_TOKEN"}})
    assert lst.get_centre("119") == Centre("119", "PJSIP/centre-119", 20.0, "mqtt")
    water = lst.get_centre("water")
    assert (water.http_url, water.http_timeout_s, water.http_retries, water.answer_timeout_s) == (
        "https://water.example/cases", 5.0, 0, 30.5)
    assert lst.get_centre("999") is None and lst.targets("nope") == ()


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/cases", "http://127.8.0.1/x", "http://[::1]:9000/x",
                                 "http://localhost/x", "https://10.0.0.8/x", "https://dispatch.example/cases"])
def test_plain_http_is_accepted_on_loopback_and_https_anywhere(url):
    assert parse(**{"119": {**CENTRE, "push": "http", "http_url": url}}).get_centre("119").http_url == url


def test_a_refused_http_url_names_the_file_and_the_centre_entry(tmp_path):
    path = tmp_path / "emergency.toml"
    text = DEFAULT_EMERGENCY_PATH.read_text(encoding="utf-8")
    path.write_text(text.replace('[centres.water]\nname = "供水公司"\ndial = "PJSIP/centre-water"\n'
                                 'answer_timeout_s = 30\npush = "mqtt"',
                                 '[centres.water]\nname = "供水公司"\ndial = "PJSIP/centre-water"\n'
                                 'answer_timeout_s = 30\npush = "http"\nhttp_url = "http://dispatch.water.example/x"'),
                    encoding="utf-8")
    with pytest.raises(EmergencyListError) as info:
        load_emergency_list(path, require_centres=True)
    assert str(info.value).startswith(f"{path}: centres.water.http_url: plain http://")


def test_confirm_can_be_turned_off_per_situation():
    assert parse({**SITUATION, "confirm": False}).get("fire").confirm is False
    assert parse().get("fire").confirm is True


def test_the_centres_table_widens_the_known_centres():
    lst = parse({**SITUATION, "centres": ["forest", "119"]},
                forest={"dial": "PJSIP/forest", "answer_timeout_s": 25, "push": "none"}, **{"119": CENTRE})
    assert [c.name for c in lst.targets("fire")] == ["forest", "119"]


@pytest.mark.parametrize("situation,centres,field,reason", [
    ({"centres": ["120"]}, None, "situation[0] (fire).centres[0]", "unknown centre '120'"),
    ({"confirm": "yes"}, None, "situation[0] (fire).confirm", "true or false"),
    (None, {"119": {**CENTRE, "dial": ""}}, "centres.119.dial", "required"),
    (None, {"119": {k: v for k, v in CENTRE.items() if k != "dial"}}, "centres.119.dial", "required"),
    (None, {"119": {**CENTRE, "dial": "centre-119"}}, "centres.119.dial", "TECH/resource"),
    (None, {"119": {**CENTRE, "dial": "PJSIP/a,30"}}, "centres.119.dial", "TECH/resource"),
    (None, {"119": {**CENTRE, "dial": "PJSIP/a b"}}, "centres.119.dial", "TECH/resource"),
    (None, {"119": {**CENTRE, "answer_timeout_s": 0}}, "centres.119.answer_timeout_s", "above 0"),
    (None, {"119": {**CENTRE, "answer_timeout_s": 301}}, "centres.119.answer_timeout_s", "at most 300"),
    (None, {"119": {**CENTRE, "answer_timeout_s": "20"}}, "centres.119.answer_timeout_s", "a number"),
    (None, {"119": {**CENTRE, "answer_timeout_s": True}}, "centres.119.answer_timeout_s", "a number"),
    (None, {"119": {k: v for k, v in CENTRE.items() if k != "answer_timeout_s"}},
     "centres.119.answer_timeout_s", "required"),
    (None, {"119": {**CENTRE, "push": "fax"}}, "centres.119.push", "one of 'mqtt', 'http', 'none'"),
    (None, {"119": {**CENTRE, "push": "http"}}, "centres.119.http_url", "required when push"),
    (None, {"119": {**CENTRE, "http_url": "ftp://x"}}, "centres.119.http_url", "http:// or https://"),
    (None, {"119": {**CENTRE, "http_url": "http://water.example/cases"}}, "centres.119.http_url",
     "plain http:// only to this machine"),
    (None, {"119": {**CENTRE, "http_url": "http://127.0.0.1.example/x"}}, "centres.119.http_url", "https://"),
    (None, {"119": {**CENTRE, "http_url": "http://127.0.0.1@dispatch.example/x"}}, "centres.119.http_url",
     "https://"),
    (None, {"119": {**CENTRE, "http_url": "http://10.0.0.8:8080/x"}}, "centres.119.http_url", "https://"),
    (None, {"119": {**CENTRE, "http_url": "http://[::1/x"}}, "centres.119.http_url", "https://"),
    (None, {"119": {**CENTRE, "http_timeout_s": 61}}, "centres.119.http_timeout_s", "at most 60"),
    (None, {"119": {**CENTRE, "http_retries": -1}}, "centres.119.http_retries", "0-10"),
    (None, {"119": {**CENTRE, "http_retries": 2.5}}, "centres.119.http_retries", "whole number"),
    (None, {"119": {**CENTRE, "http_token_env": "secret token"}}, "centres.119.http_token_env", "variable"),
    (None, {"119": {**CENTRE, "timeout": 3}}, "centres.119.timeout", "unknown field"),
    (None, {"119": {**CENTRE, "name": ""}}, "centres.119.name", "non-empty"),
    (None, {"119": CENTRE, "a/b": CENTRE}, "centres.a/b", "MQTT user"),
    (None, {"119": "PJSIP/centre-119"}, "centres.119", "must be a table"),
])
def test_bad_configuration_names_file_field_and_reason(situation, centres, field, reason):
    raw = {"situation": [{**SITUATION, **(situation or {})}], "centres": centres or {"119": CENTRE}}
    with pytest.raises(EmergencyListError) as info:
        parse_emergency_list(raw, source="em.toml")
    assert (info.value.file, info.value.field_path) == ("em.toml", field)
    assert reason in info.value.reason and str(info.value).startswith("em.toml: ")


def test_an_empty_centres_table_is_refused():
    with pytest.raises(EmergencyListError, match="at least one") as info:
        parse_emergency_list({"situation": [SITUATION], "centres": {}})
    assert info.value.field_path == "centres"


def test_a_list_without_centres_matches_but_is_refused_where_calls_are_handed_off(tmp_path):
    lst = parse_emergency_list({"situation": [SITUATION]})
    assert lst.centres == () and lst.targets("fire") == () and lst.match("着火了").centre == "119"
    with pytest.raises(EmergencyListError) as info:
        parse_emergency_list({"situation": [SITUATION]}, require_centres=True)
    assert info.value.field_path == "centres"
    path = tmp_path / "em.toml"
    path.write_text(DEFAULT_EMERGENCY_PATH.read_text(encoding="utf-8").split("\n[centres.110]")[0],
                    encoding="utf-8")
    with pytest.raises(EmergencyListError, match="centres"):
        load_emergency_list(path, require_centres=True)
    assert load_emergency_list(path).match("着火了").situation == "fire"
