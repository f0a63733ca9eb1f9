"""Settings with embedded defaults, overridable by environment variables and command-line options."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

ENV_DB = "ACCESSRC_SIM_DB"
ENV_KEYS = "ACCESSRC_SIM_KEYS_DIR"
ENV_API_KEY = "ACCESSRC_SIM_API_KEY"
DEFAULT_DB = "accessrc-sim.db"
DEFAULT_KEYS_DIR = "keys"


@dataclass
class Settings:
    db_path: Path = field(default_factory=lambda: Path(os.environ.get(ENV_DB, DEFAULT_DB)))
    keys_dir: Path = field(default_factory=lambda: Path(os.environ.get(ENV_KEYS, DEFAULT_KEYS_DIR)))
    retry_delays: tuple[float, ...] | None = None  # None: the platform default schedule
    timeout: float | None = None
