"""Settings: embedded defaults, then the environment, then flags; read in one place and passed down."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from simulator import config
from simulator.app import create_app
from simulator.cli import main
from simulator.config import Settings


def test_defaults_then_environment_then_flags():
    assert Settings.load({}) == Settings()
    assert Settings().db_path == config.DEFAULT_DB and Settings().keys_dir == config.DEFAULT_KEYS_DIR
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
    assert Settings.load({config.ENV_DB: "", config.ENV_API_KEY: ""}) == Settings()
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
    default = runner.invoke(main, ["admin-key"], env={config.ENV_DB: ""})
    assert default.exit_code == 2 and f"no database at {config.DEFAULT_DB};" in default.output
