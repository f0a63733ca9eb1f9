"""Settings: embedded defaults, then environment variables, then command-line flags.

The one reader of the environment for them (guard.py reads ACCESSRC_SIM_ALLOW_HOSTS, the outbound allow-list,
where it is enforced). A command builds one `Settings` and passes it down (`create_app(settings=...)`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields

ENV_DB = "ACCESSRC_SIM_DB"
ENV_KEYS = "ACCESSRC_SIM_KEYS_DIR"
ENV_API_KEY = "ACCESSRC_SIM_API_KEY"
ENV_SCENARIOS_DIR = "ACCESSRC_SIM_SCENARIOS_DIR"
DEFAULT_DB = "accessrc-sim.db"
DEFAULT_KEYS_DIR = "keys"

ENVIRONMENT = {"db_path": ENV_DB, "keys_dir": ENV_KEYS, "api_key": ENV_API_KEY, "scenarios_dir": ENV_SCENARIOS_DIR}


def from_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The settings the environment sets, by field name; an empty variable counts as unset (as Click counts it)."""
    env = os.environ if environ is None else environ
    return {name: env[var] for name, var in ENVIRONMENT.items() if env.get(var)}


@dataclass(frozen=True)
class Settings:
    """What a command or a server runs with. Paths stay as given: messages quote them as the user typed them."""

    db_path: str = DEFAULT_DB
    keys_dir: str = DEFAULT_KEYS_DIR
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
        return cls(**{**from_environment(environ), **given})
