import dataclasses
import itertools
import os
from pathlib import Path

import pytest

from gateway.basics.backoff import backoff_delays
from gateway.cli.main import main
from gateway.config import CONFIG_ENV, ConfigError, Endpoint, load_config


@pytest.fixture(autouse=True)
def no_config_env(monkeypatch):
    monkeypatch.delenv(CONFIG_ENV, raising=False)


def write(tmp_path: Path, text: str, name: str = "hotline.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.source == str(path)
    return [(p.field, p.reason) for p in info.value.problems]


# -- the embedded defaults: the sandbox topology ---------------------------------------------------------------

def test_defaults_load_without_a_file_and_describe_the_sandbox_topology():
    cfg = load_config()
    assert cfg.source == "<embedded defaults>"
    assert (cfg.sip.bind, cfg.sip.port, cfg.sip.hotline_number) == ("127.0.0.1", 5060, "12345")
    assert (cfg.ami.host, cfg.ami.port) == ("127.0.0.1", 5038)
    assert (cfg.fastagi.host, cfg.fastagi.port) == ("127.0.0.1", 4573)
    assert (cfg.mqtt.host, cfg.mqtt.port) == ("127.0.0.1", 1883)
    assert cfg.agents == (
        Endpoint("agent1", "sip:agent1@127.0.0.1:5071"),
        Endpoint("agent2", "sip:agent2@127.0.0.1:5075"),
    )
    assert [(c.name, c.host_port) for c in cfg.centres] == [
        ("110", ("127.0.0.1", 5081)), ("119", ("127.0.0.1", 5083)), ("120", ("127.0.0.1", 5085)),
        ("122", ("127.0.0.1", 5087)), ("water", ("127.0.0.1", 5089)), ("power", ("127.0.0.1", 5091)),
        ("gas", ("127.0.0.1", 5093)),
    ]
    assert cfg.restriction.default_days == 30
    assert cfg.gateway.timezone == "Asia/Shanghai"
    assert cfg.store.path == cfg.state_dir / "hotline.db"
    assert cfg.ivr.menu.is_file() and cfg.ivr.prompt_catalogue.is_file()


def test_default_ami_reconnect_waits_never_exceed_two_seconds_however_long_asterisk_is_away():
    # AMI must be back within 3 s of Asterisk listening again: the longest wait between attempts bounds it
    cfg = load_config()
    delays = list(itertools.islice(backoff_delays(cfg.ami.reconnect_min_s, cfg.ami.reconnect_max_s), 50))
    assert max(delays) <= 2.0


def test_sandbox_ports_do_not_collide():
    cfg = load_config()
    ports = [cfg.sip.port, cfg.ami.port, cfg.fastagi.port, cfg.mqtt.port]
    ports += [ep.host_port[1] for ep in (*cfg.agents, *cfg.centres)]
    assert len(ports) == len(set(ports))
    assert not any(cfg.sip.rtp_start <= p <= cfg.sip.rtp_end for p in ports)


def test_config_env_var_names_the_file(tmp_path, monkeypatch):
    path = write(tmp_path, "[fastagi]\nport = 4600\n")
    monkeypatch.setenv(CONFIG_ENV, str(path))
    cfg = load_config()
    assert cfg.source == str(path)
    assert cfg.fastagi.port == 4600


# -- overrides ---------------------------------------------------------------------------------------------------

def test_override_changes_only_the_fields_it_names(tmp_path):
    defaults = load_config()
    cfg = load_config(write(tmp_path, '[fastagi]\nport = 4600\n\n[gateway]\ntimezone = "Asia/Urumqi"\n'))
    assert cfg.fastagi == dataclasses.replace(defaults.fastagi, port=4600)
    assert cfg.gateway == dataclasses.replace(defaults.gateway, timezone="Asia/Urumqi")
    for field in dataclasses.fields(cfg):
        if field.name not in {"source", "fastagi", "gateway"}:
            assert getattr(cfg, field.name) == getattr(defaults, field.name), field.name


def test_override_of_agents_replaces_the_whole_list(tmp_path):
    cfg = load_config(write(tmp_path, '[[agents]]\nname = "desk7"\ncontact = "sip:desk7@10.0.0.7:5080"\n'))
    assert cfg.agents == (Endpoint("desk7", "sip:desk7@10.0.0.7:5080"),)
    assert cfg.agents[0].host_port == ("10.0.0.7", 5080)
    assert len(cfg.centres) == 7


def test_an_agent_is_a_plain_agent_unless_its_role_says_supervisor(tmp_path):
    cfg = load_config(write(tmp_path, '[[agents]]\nname = "desk7"\ncontact = "sip:desk7@10.0.0.7:5080"\n'
                                      '[[agents]]\nname = "lead1"\ncontact = "sip:lead1@10.0.0.8:5080"\n'
                                      'role = "supervisor"\n'))
    assert [(a.name, a.role) for a in cfg.agents] == [("desk7", "agent"), ("lead1", "supervisor")]


def test_integer_is_accepted_where_seconds_are_a_float(tmp_path):
    cfg = load_config(write(tmp_path, "[gateway]\ncall_deadline_s = 60\n"))
    assert cfg.gateway.call_deadline_s == 60.0 and isinstance(cfg.gateway.call_deadline_s, float)


def test_empty_file_is_the_defaults(tmp_path):
    cfg = load_config(write(tmp_path, ""))
    assert dataclasses.replace(cfg, source="x") == dataclasses.replace(load_config(), source="x")


# -- bad files: every problem names the dotted field and the reason ----------------------------------------------

AGENT1 = '[[agents]]\nname = "agent1"\ncontact = "sip:agent1@127.0.0.1:5071"\n'
# A bad agent entry next to a good one, so that "at least one agent" is not reported as well.
AND_AGENT2 = '[[agents]]\nname = "agent2"\ncontact = "sip:agent2@127.0.0.1:5075"\n'

BAD_FILES = {
    "typo in a key": ("[fastagi]\nprot = 4573\n", "fastagi.prot", "unknown setting"),
    "unknown section": ("[fastagl]\nport = 4573\n", "fastagl", "unknown setting"),
    "section given as a value": ("fastagi = 4573\n", "fastagi", "must be a table"),
    "port as a string": ('[fastagi]\nport = "4573"\n', "fastagi.port", "must be int, got str"),
    "port as a bool": ("[fastagi]\nport = true\n", "fastagi.port", "must be int, got bool"),
    "float as a string": ('[gateway]\ncall_deadline_s = "300"\n', "gateway.call_deadline_s",
                          "must be float, got str"),
    "bool as a string": ('[sandbox]\nsimulated_agents = "yes"\n', "sandbox.simulated_agents",
                         "must be bool, got str"),
    "port above range": ("[ami]\nport = 65536\n", "ami.port", "must be a TCP/UDP port 1-65535"),
    "port zero": ("[sip]\nport = 0\n", "sip.port", "must be a TCP/UDP port 1-65535"),
    "negative port": ("[mqtt]\nport = -1\n", "mqtt.port", "must be a TCP/UDP port 1-65535"),
    "host name instead of an IP": ('[sip]\nbind = "localhost"\n', "sip.bind", "must be an IP address"),
    "AMI host not an IP": ('[ami]\nhost = "127.0.0.256"\n', "ami.host", "must be an IP address"),
    "relative state_dir": ('[gateway]\nstate_dir = "var/lib/hotline"\n', "gateway.state_dir",
                           "must be an absolute path"),
    "unknown timezone": ('[gateway]\ntimezone = "Asia/Beijing"\n', "gateway.timezone", "unknown time zone"),
    "timezone that is a region directory": ('[gateway]\ntimezone = "Asia"\n', "gateway.timezone",
                                            "unknown time zone"),
    "absolute timezone path": ('[gateway]\ntimezone = "/etc/localtime"\n', "gateway.timezone",
                               "unknown time zone"),
    "bad log level": ('[gateway]\nlog_level = "VERBOSE"\n', "gateway.log_level", "must be DEBUG, INFO"),
    "zero deadline": ("[gateway]\ncall_deadline_s = 0\n", "gateway.call_deadline_s", "must be greater than 0"),
    "agent contact without scheme": ('[[agents]]\nname = "agent1"\ncontact = "agent1@127.0.0.1:5071"\n' + AND_AGENT2,
                                     "agents[0].contact", "must be a SIP URI"),
    "agent contact with a space": ('[[agents]]\nname = "agent1"\ncontact = "sip:agent 1@127.0.0.1"\n' + AND_AGENT2,
                                   "agents[0].contact", "must be a SIP URI"),
    "agent name with a space": ('[[agents]]\nname = "agent 1"\ncontact = "sip:a@127.0.0.1"\n' + AND_AGENT2,
                                "agents[0].name", "must be 1-40 letters"),
    "agent with an extra key": ('[[agents]]\nname = "a"\ncontact = "sip:a@127.0.0.1"\nport = 5071\n' + AND_AGENT2,
                                "agents[0]", "only 'name', 'contact' and 'role'"),
    "agent role not a known role": ('[[agents]]\nname = "a"\ncontact = "sip:a@127.0.0.1"\nrole = "admin"\n'
                                    + AND_AGENT2, "agents[0].role", 'must be "agent" or "supervisor"'),
    "centre with a role": ('[[centres]]\nname = "110"\ncontact = "sip:110@127.0.0.1"\nrole = "supervisor"\n',
                           "centres[0]", "only 'name' and 'contact'"),
    "duplicate agent names": (AGENT1 + AGENT1.replace(":5071", ":5072"), "agents[1].name",
                              "duplicate name 'agent1'"),
    "agents not a list": ('agents = "agent1"\n', "agents", "must be an array of tables"),
    "only agent invalid": (AGENT1.replace("sip:", "sips"), "agents[0].contact", "must be a SIP URI"),
    "no agents": ("agents = []\n", "agents", "at least one agent"),
    "bad centre contact": ('[[centres]]\nname = "110"\ncontact = "tel:110"\n', "centres[0].contact",
                           "must be a SIP URI"),
    "restriction days 0": ("[restriction]\ndefault_days = 0\n", "restriction.default_days", "must be 1-365"),
    "restriction days 366": ("[restriction]\ndefault_days = 366\n", "restriction.default_days",
                             "must be 1-365"),
    "reconnect max below min": ("[ami]\nreconnect_min_s = 5.0\nreconnect_max_s = 1.0\n",
                                "ami.reconnect_max_s", "must not be below ami.reconnect_min_s"),
    "rtp range too small": ("[sip]\nrtp_start = 10000\nrtp_end = 10005\n", "sip.rtp_end",
                            "must be at least 10 above sip.rtp_start"),
    "hotline number not digits": ('[sip]\nhotline_number = "12345a"\n', "sip.hotline_number",
                                  "must be digits"),
    "caller_match not an address": ('[sip]\ncaller_match = "trunk.example"\n', "sip.caller_match",
                                    "must be IP addresses or networks"),
    "secret_env not a variable name": ('[ami]\nsecret_env = "ami-secret"\n', "ami.secret_env",
                                       "must be an environment variable name"),
    "TOML syntax error": ("[fastagi\nport = 4573\n", "<file>", "not valid TOML"),
    "duplicate TOML key": ("[fastagi]\nport = 1\nport = 2\n", "<file>", "not valid TOML"),
}


@pytest.mark.parametrize("text, field, reason", BAD_FILES.values(), ids=BAD_FILES.keys())
def test_bad_file_names_the_field_and_the_reason(tmp_path, text, field, reason):
    problems = problems_of(write(tmp_path, text))
    assert problems[0][0] == field, problems
    assert reason in problems[0][1]
    # nothing else is blamed, except that a file whose only agent entry is unusable also has no agents
    assert problems[1:] in ([], [("agents", "at least one agent is needed (7x24 human service)")]), problems


def test_config_error_message_names_the_file_the_field_and_the_reason(tmp_path):
    path = write(tmp_path, "[fastagi]\nport = 0\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value)
    assert "fastagi.port: must be a TCP/UDP port 1-65535" in str(info.value)


def test_missing_file_cannot_be_read(tmp_path):
    problems = problems_of(tmp_path / "absent.toml")
    assert [f for f, _ in problems] == ["<file>"]
    assert "cannot be read" in problems[0][1]


def test_directory_instead_of_a_file_cannot_be_read(tmp_path):
    problems = problems_of(tmp_path)
    assert [f for f, _ in problems] == ["<file>"] and "cannot be read" in problems[0][1]


def test_file_that_is_not_utf8_cannot_be_read(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[ivr]\nespeak_voice = "caf\xe9"\n')
    problems = problems_of(path)
    assert [f for f, _ in problems] == ["<file>"] and "cannot be read" in problems[0][1]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a mode-000 file")
def test_unreadable_file_cannot_be_read(tmp_path):
    path = write(tmp_path, "[fastagi]\nport = 4600\n")
    path.chmod(0)
    problems = problems_of(path)
    assert [f for f, _ in problems] == ["<file>"] and "cannot be read" in problems[0][1]


def test_several_problems_in_one_file_are_all_reported(tmp_path):
    problems = problems_of(write(tmp_path, (
        "agents = []\n"
        "[fastagi]\nport = 0\n"
        '[sip]\nbind = "localhost"\n'
        "[restriction]\ndefault_days = 366\n"
        '[gateway]\nstate_dir = "relative"\ntimezone = "Mars/Olympus"\n'
    )))
    assert {f for f, _ in problems} == {
        "fastagi.port", "sip.bind", "restriction.default_days", "gateway.state_dir", "gateway.timezone", "agents",
    }


def test_unknown_keys_and_bad_values_are_reported_together(tmp_path):
    # One round of fixes, not two: a typo does not hide the bad value next to it.
    problems = problems_of(write(tmp_path, "[fastagi]\nprot = 4573\n[ami]\nport = 99999\nusernme = 'x'\n"))
    assert {f for f, _ in problems} == {"fastagi.prot", "ami.usernme", "ami.port"}


# -- the AMI secret ---------------------------------------------------------------------------------------------

@pytest.fixture
def sandbox_cfg(tmp_path, monkeypatch):
    monkeypatch.delenv("HOTLINE_AMI_SECRET", raising=False)
    return load_config(write(tmp_path, f'[gateway]\nstate_dir = "{tmp_path / "state"}"\n'))


def test_ami_secret_comes_from_the_environment_first(sandbox_cfg, monkeypatch):
    sandbox_cfg.ami_secret_file.parent.mkdir(parents=True)
    sandbox_cfg.ami_secret_file.write_text("from-file\n")
    monkeypatch.setenv("HOTLINE_AMI_SECRET", "from-env")
    assert sandbox_cfg.ami_secret() == "from-env"


def test_ami_secret_env_variable_name_is_configurable(tmp_path, monkeypatch):
    cfg = load_config(write(tmp_path, '[ami]\nsecret_env = "MY_AMI_SECRET"\n'))
    monkeypatch.setenv("HOTLINE_AMI_SECRET", "wrong-one")
    monkeypatch.setenv("MY_AMI_SECRET", "right-one")
    assert cfg.ami_secret() == "right-one"


def test_ami_secret_falls_back_to_the_generated_file(sandbox_cfg):
    assert sandbox_cfg.ami_secret_file == sandbox_cfg.state_dir / "secrets" / "ami.secret"
    sandbox_cfg.ami_secret_file.parent.mkdir(parents=True)
    sandbox_cfg.ami_secret_file.write_text("  generated-secret\n")
    assert sandbox_cfg.ami_secret() == "generated-secret"


def test_empty_ami_secret_env_falls_back_to_the_file(sandbox_cfg, monkeypatch):
    monkeypatch.setenv("HOTLINE_AMI_SECRET", "")
    sandbox_cfg.ami_secret_file.parent.mkdir(parents=True)
    sandbox_cfg.ami_secret_file.write_text("generated-secret")
    assert sandbox_cfg.ami_secret() == "generated-secret"


@pytest.mark.parametrize("file_text", [None, "", "  \n"])
def test_no_ami_secret_anywhere_is_a_config_error_naming_the_variable(sandbox_cfg, file_text):
    if file_text is not None:
        sandbox_cfg.ami_secret_file.parent.mkdir(parents=True)
        sandbox_cfg.ami_secret_file.write_text(file_text)
    with pytest.raises(ConfigError) as info:
        sandbox_cfg.ami_secret()
    [problem] = info.value.problems
    assert problem.field == "ami.secret_env"
    assert "$HOTLINE_AMI_SECRET" in problem.reason and "hotline stack up" in problem.reason


# -- hotline config check -----------------------------------------------------------------------------------------

def test_config_check_names_field_and_reason_and_exits_2_for_a_bad_file(tmp_path, capsys):
    path = write(tmp_path, "[fastagi]\nprot = 4573\n")
    assert main(["--config", str(path), "config", "check"]) == 2
    out = capsys.readouterr()
    assert "fastagi.prot: unknown setting" in out.err
    assert str(path) in out.err
    assert "ok" not in out.out


def test_config_check_reports_every_problem(tmp_path, capsys):
    path = write(tmp_path, "[restriction]\ndefault_days = 0\n[ami]\nreconnect_min_s = 5\nreconnect_max_s = 1\n")
    assert main(["--config", str(path), "config", "check"]) == 2
    err = capsys.readouterr().err
    assert "restriction.default_days: must be 1-365" in err
    assert "ami.reconnect_max_s: must not be below ami.reconnect_min_s" in err


def test_config_check_of_an_unreadable_file_exits_2(tmp_path, capsys):
    assert main(["--config", str(tmp_path / "absent.toml"), "config", "check"]) == 2
    assert "<file>: cannot be read" in capsys.readouterr().err


def test_triage_model_is_packaged_by_default_none_or_a_path_and_checked(tmp_path, capsys):
    packaged = load_config(write(tmp_path, ""))
    assert packaged.triage.model.name == "default_model.json" and packaged.triage.model.is_file()
    assert packaged.triage.low_confidence == 0.6
    assert load_config(write(tmp_path, '[triage]\nmodel = "none"\n')).triage.model is None
    bad = tmp_path / "model.json"
    bad.write_text("{}", encoding="utf-8")
    path = write(tmp_path, f'[triage]\nmodel = "{bad}"\nlow_confidence = 0.4\n')
    assert load_config(path).triage.low_confidence == 0.4
    assert main(["--config", str(path), "config", "check"]) == 2
    assert "triage.model:" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="triage.low_confidence"):
        load_config(write(tmp_path, "[triage]\nlow_confidence = 2\n"))


def test_config_check_reports_a_missing_menu_file(tmp_path, capsys):
    path = write(tmp_path, f'[ivr]\nmenu = "{tmp_path / "menu.toml"}"\n')
    assert main(["--config", str(path), "config", "check"]) == 2
    assert "ivr.menu: file" in capsys.readouterr().err


def test_config_check_of_a_good_file_exits_0(tmp_path, capsys):
    path = write(tmp_path, f'[gateway]\nstate_dir = "{tmp_path}"\n[fastagi]\nport = 4600\n')
    assert main(["--config", str(path), "config", "check"]) == 0
    out = capsys.readouterr()
    assert f"configuration {path}: ok" in out.out
    assert out.err == ""


def test_config_check_names_a_speech_model_that_is_not_a_vosk_model(tmp_path, capsys):
    from gateway.cli.main import main

    path = tmp_path / "hotline.toml"
    path.write_text(f'[speech]\nmodel = "{tmp_path}"\n')
    assert main(["--config", str(path), "config", "check"]) == 2
    err = capsys.readouterr().err
    assert "speech.model" in err and "not a vosk model" in err


def test_hotline_asterisk_root_replaces_the_default_root_but_not_a_configured_one(tmp_path, monkeypatch):
    monkeypatch.setenv("HOTLINE_ASTERISK_ROOT", "/srv/asterisk-root-copy")
    monkeypatch.delenv("HOTLINE_CONFIG", raising=False)
    assert load_config().asterisk.root == Path("/srv/asterisk-root-copy")
    configured = tmp_path / "hotline.toml"
    configured.write_text('[asterisk]\nroot = "/opt/root"\n')
    assert load_config(configured).asterisk.root == Path("/opt/root")
