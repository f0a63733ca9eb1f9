"""Settings: embedded defaults, then the environment, then flags; read in one place and passed down."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import platformdirs
import pytest
from click.testing import CliRunner

from simulator import config
from simulator.app import create_app
from simulator.cli import main
from simulator.config import Settings


def test_defaults_then_environment_then_flags():
    assert Settings.load() == Settings()
    user = Path(platformdirs.user_data_dir("accessrc-sim", appauthor=False))
    assert Settings.load({}).db_path == str(user / "accessrc-sim.db")
    assert Settings.load({}).keys_dir == str(user / "keys")
    env = {
        config.ENV_DB: "/data/sim.db",
        config.ENV_KEYS: "/data/keys",
        config.ENV_API_KEY: "k",
        config.ENV_SCENARIOS_DIR: "/data/scenarios",
    }
    from_env = Settings.load(env)
    assert (from_env.db_path, from_env.keys_dir, from_env.api_key, from_env.scenarios_dir) == (
        "/data/sim.db",
        "/data/keys",
        "k",
        "/data/scenarios",
    )
    flagged = Settings.load(env, db_path="here.db", keys_dir=None, retry_delays=(0.0,))
    assert (flagged.db_path, flagged.keys_dir, flagged.retry_delays) == ("here.db", "/data/keys", (0.0,))


def test_an_empty_variable_counts_as_unset_and_an_unknown_flag_is_refused():
    assert Settings.load({config.ENV_DB: "", config.ENV_API_KEY: "", config.ENV_HOME: ""}) == Settings.load({})
    with pytest.raises(TypeError, match="unknown settings: dbpath"):
        Settings.load({}, dbpath="x.db")


def test_create_app_takes_its_defaults_from_the_settings_it_is_given(tmp_path, keys_dir, monkeypatch):
    monkeypatch.setenv(config.ENV_API_KEY, "from-env")  # given settings win: the environment is not read again
    settings = Settings(db_path=str(tmp_path / "s.db"), keys_dir=str(keys_dir), api_key="given", timeout=3.0)
    app = create_app({"START_WORKERS": False}, settings=settings)
    services = app.extensions["accessrc_sim"]
    assert app.config["DB_PATH"] == str(tmp_path / "s.db") and services.settings.timeout == 3.0
    assert services.check_api_key("given") and not services.check_api_key("from-env")


def test_a_flag_wins_over_the_environment_which_wins_over_the_default(tmp_path, monkeypatch):
    env_db, flag_db = tmp_path / "env.db", tmp_path / "flag.db"
    runner = CliRunner()
    from_env = runner.invoke(main, ["admin-key"], env={config.ENV_DB: str(env_db)})
    assert from_env.exit_code == 2 and f"no database at {env_db};" in from_env.output
    from_flag = runner.invoke(main, ["admin-key", "--db", str(flag_db)], env={config.ENV_DB: str(env_db)})
    assert from_flag.exit_code == 2 and f"no database at {flag_db};" in from_flag.output
    monkeypatch.chdir(tmp_path)
    home = tmp_path / "home"
    default = runner.invoke(main, ["admin-key"], env={config.ENV_DB: "", config.ENV_HOME: str(home)})
    assert default.exit_code == 2 and f"no database at {home / 'accessrc-sim.db'};" in default.output


# -- issue 15: one data folder per user, whatever the current folder ------------------------------------------------
def test_the_data_folder_is_the_users_unless_accessrc_sim_home_replaces_it_and_the_paths_win_over_both():
    user = Path(platformdirs.user_data_dir("accessrc-sim", appauthor=False))
    assert config.home({}) == user
    assert config.home({config.ENV_HOME: "/srv/sim"}) == Path("/srv/sim")
    env = {config.ENV_HOME: "/srv/sim"}
    assert (Settings.load(env).db_path, Settings.load(env).keys_dir) == ("/srv/sim/accessrc-sim.db", "/srv/sim/keys")
    env |= {config.ENV_DB: "/elsewhere/x.db"}
    assert (Settings.load(env).db_path, Settings.load(env).keys_dir) == ("/elsewhere/x.db", "/srv/sim/keys")
    flagged = Settings.load(env, keys_dir="k", db_path="f.db")
    assert (flagged.db_path, flagged.keys_dir) == ("f.db", "k")


def test_the_test_suite_keeps_its_data_folder_in_a_temp_folder(sim_home):
    assert os.environ[config.ENV_HOME] == str(sim_home) and config.home() == sim_home
    assert not sim_home.is_relative_to(Path(platformdirs.user_data_dir("accessrc-sim", appauthor=False)))


def _run(args, home, cwd, **env):
    old = os.getcwd()
    os.chdir(cwd)
    try:
        environ = {config.ENV_HOME: str(home), config.ENV_DB: "", config.ENV_KEYS: "", **env}
        return CliRunner().invoke(main, args, env=environ)
    finally:
        os.chdir(old)


def test_send_from_any_folder_signs_with_the_key_keys_show_printed(tmp_path, start_receiver):
    """The issue: from another folder, send made a new ./keys pair and the receiver answered 401."""
    home, here, there = tmp_path / "home", tmp_path / "here", tmp_path / "there"
    here.mkdir(), there.mkdir()
    shown = _run(["keys", "show"], home, here)
    assert shown.exit_code == 0, shown.output
    pem = shown.stdout
    assert pem.startswith("-----BEGIN PUBLIC KEY-----")
    keys = home / "keys"
    line = f"accessrc-sim: generated a new RSA key pair in {keys}; its public key: accessrc-sim keys show --keys-dir "
    line += str(keys)
    assert shown.stderr.splitlines() == [line]  # the one line, on stderr: stdout stays the PEM alone
    assert stat.S_IMODE(home.stat().st_mode) == 0o700 and stat.S_IMODE(keys.stat().st_mode) == 0o700
    srv = start_receiver("accredit", public_key_pem=pem)
    sent = _run(["send", "BadgeExportZipFile.Created", "--url", srv.url + "/hook", "--retry-delays", ""], home, there)
    assert sent.exit_code == 0, sent.output
    assert "generated a new RSA key pair" not in sent.output
    assert [r.status for r in srv.received] == [200]  # the receiver holding `keys show`'s key accepts it
    assert not (there / "keys").exists() and not (there / "accessrc-sim.db").exists()
    assert (home / "accessrc-sim.db").exists()
    again = _run(["keys", "show"], home, there)
    assert again.stdout == pem and again.stderr == f"accessrc-sim: the key pair is in {keys}\n"


@pytest.mark.parametrize(
    "command",
    [
        ["keys", "show"],
        ["send", "BadgeExportZipFile.Created", "--url", "http://127.0.0.1:9/h", "--retry-delays", ""],
    ],
)
def test_every_command_that_generates_a_pair_says_so_in_one_line(tmp_path, command):
    keys = tmp_path / "my keys"
    out = _run([*command, "--keys-dir", str(keys)], tmp_path / "home", tmp_path)
    assert out.stderr.count("generated a new RSA key pair") == 1, out.output
    assert f"accessrc-sim keys show --keys-dir '{keys}'" in out.stderr  # a command to copy, quoted for the shell
    assert (keys / "accredit_private.pem").exists()
    quiet = _run([*command, "--keys-dir", str(keys)], tmp_path / "home", tmp_path)
    assert "generated a new RSA key pair" not in quiet.output
