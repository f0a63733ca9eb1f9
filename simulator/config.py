"""Settings: embedded defaults, then environment variables, then command-line flags.

The one reader of the environment for them (guard.py reads ACCESSRC_SIM_ALLOW_HOSTS, the outbound allow-list,
where it is enforced). A command builds one `Settings` and passes it down (`create_app(settings=...)`).

The key pair and the database default to one per-user data folder, whatever the current folder: so `send` run
from anywhere signs with the key `keys show` printed. ACCESSRC_SIM_HOME replaces that folder; ACCESSRC_SIM_DB,
ACCESSRC_SIM_KEYS_DIR and the flags `--db`, `--keys-dir` still win over it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

import platformdirs

APP_NAME = "accessrc-sim"

ENV_DB = "ACCESSRC_SIM_DB"
ENV_KEYS = "ACCESSRC_SIM_KEYS_DIR"
ENV_API_KEY = "ACCESSRC_SIM_API_KEY"
ENV_SCENARIOS_DIR = "ACCESSRC_SIM_SCENARIOS_DIR"
ENV_HOME = "ACCESSRC_SIM_HOME"
DB_FILE = "accessrc-sim.db"  # in the data folder
KEYS_FOLDER = "keys"  # in the data folder

ENVIRONMENT = {"db_path": ENV_DB, "keys_dir": ENV_KEYS, "api_key": ENV_API_KEY, "scenarios_dir": ENV_SCENARIOS_DIR}


def from_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The settings the environment sets, by field name; an empty variable counts as unset (as Click counts it)."""
    env = os.environ if environ is None else environ
    return {name: env[var] for name, var in ENVIRONMENT.items() if env.get(var)}


def home(environ: Mapping[str, str] | None = None) -> Path:
    """The data folder: $ACCESSRC_SIM_HOME, else the user's data folder (XDG_DATA_HOME/accessrc-sim on Linux,
    ~/Library/Application Support/accessrc-sim on macOS, %LOCALAPPDATA%\\accessrc-sim on Windows)."""
    env = os.environ if environ is None else environ
    given = env.get(ENV_HOME)
    return Path(given).expanduser() if given else Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def default_db(environ: Mapping[str, str] | None = None) -> str:
    return str(home(environ) / DB_FILE)


def default_keys_dir(environ: Mapping[str, str] | None = None) -> str:
    return str(home(environ) / KEYS_FOLDER)


def make_folder(path: str | Path) -> None:
    """Create `path` and its missing parents, each readable by this user only (0700: the data folder holds the
    private key and the database). A folder that exists is left as it is; OSError when one cannot be made."""
    path = Path(path)
    missing = []
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    for folder in reversed(missing):
        try:
            os.mkdir(folder, 0o700)
        except FileExistsError:  # another process made it first
            pass


@dataclass(frozen=True)
class Settings:
    """What a command or a server runs with. Paths stay as given: messages quote them as the user typed them."""

    db_path: str = field(default_factory=default_db)  # default: <data folder>/accessrc-sim.db
    keys_dir: str = field(default_factory=default_keys_dir)  # default: <data folder>/keys
    api_key: str | None = None  # None: generated at first start; the database keeps only its hash
    scenarios_dir: str | None = None  # None: the shipped scenarios/ folder
    retry_delays: tuple[float, ...] | None = None  # None: the platform default schedule (already checked)
    timeout: float | None = None  # None: delivery.DEFAULT_TIMEOUT (already checked)

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None, **flags: object) -> Settings:
        """Defaults, then the environment, then `flags` (a flag that is None was not given)."""
        known = {f.name for f in fields(cls)}
        unknown = set(flags) - known
        if unknown:
            raise TypeError(f"unknown settings: {', '.join(sorted(unknown))}")
        given = {name: value for name, value in flags.items() if value is not None}
        defaults = {"db_path": default_db(environ), "keys_dir": default_keys_dir(environ)}
        return cls(**{**defaults, **from_environment(environ), **given})
