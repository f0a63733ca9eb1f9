"""The files `--db` and `--keys-dir` name: opened, or refused with exit 2 before anything is written."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import click

from .. import config, signing
from ..store import DATABASE_ERRORS, is_postgres_url, is_sqlite_uri, uri_refused
from .errors import UsageProblem

SQLITE_HEADER = b"SQLite format 3\x00"


def check_db(db_path: str | Path) -> None:
    """Refuse a --db that cannot be the simulator's SQLite file (exit 2, before anything is written): a folder, a
    special file (SQLite would block on a FIFO, or write its journal beside a device), a file that is not SQLite,
    a path below a file, a folder that cannot be written. A postgresql:// URL is checked when it is opened."""
    if str(db_path) == ":memory:" or is_postgres_url(str(db_path)):
        return
    if is_sqlite_uri(str(db_path)):
        raise UsageProblem(f"--db {uri_refused(str(db_path))}")
    path = Path(db_path)
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        st = None
    except OSError as exc:
        raise UsageProblem(f"--db {db_path}: {exc.strerror or exc}") from exc
    if st is None:
        folder = path.absolute().parent
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        if not folder.is_dir():
            raise UsageProblem(f"--db {db_path}: cannot create it: {folder} is a file, not a folder")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise UsageProblem(f"--db {db_path}: cannot create it: the folder {folder} is not writable")
        return
    if stat.S_ISDIR(st.st_mode):
        raise UsageProblem(f"--db {db_path}: is a folder; give the path of a database file")
    folder = path.absolute().parent
    if stat.S_ISREG(st.st_mode) and not (os.access(path, os.W_OK) and os.access(folder, os.W_OK | os.X_OK)):
        raise UsageProblem(
            f"--db {db_path}: cannot write it: "
            + ("the file is read-only" if not os.access(path, os.W_OK) else f"the folder {folder} is not writable")
            + " (SQLite writes the database and its -wal and -shm files beside it)"
        )
    if not stat.S_ISREG(st.st_mode):
        raise UsageProblem(
            f"--db {db_path}: is not a regular file (a device, FIFO or socket); give the path of a database file"
        )
    if st.st_size:
        try:
            with open(path, "rb") as fh:
                head = fh.read(len(SQLITE_HEADER))
        except OSError as exc:
            raise UsageProblem(f"--db {db_path}: cannot read it: {exc.strerror or exc}") from exc
        if head != SQLITE_HEADER:
            raise UsageProblem(
                f"--db {db_path}: is not an SQLite database (it does not start with SQLite's "
                "header); give another path, or move the file away"
            )


def open_store(db_path: str | Path):
    """The Store at --db, or exit 2 with what is wrong with the file (check_db, then SQLite's own refusal)."""
    from ..store import Store, display

    check_db(db_path)
    make_db_folder(db_path)
    try:
        return Store(db_path)
    except DATABASE_ERRORS as exc:
        raise UsageProblem(f"--db {display(db_path)}: cannot use it as the database: {exc}") from exc
    except OSError as exc:
        raise UsageProblem(f"--db {db_path}: cannot use it as the database: {exc.strerror or exc}") from exc


def make_db_folder(db_path: str | Path) -> None:
    """Create the database's missing folders (0700: config.make_folder), or exit 2 saying which cannot be made."""
    if str(db_path) == ":memory:" or is_postgres_url(str(db_path)):
        return
    try:
        config.make_folder(Path(db_path).absolute().parent)
    except OSError as exc:
        raise UsageProblem(f"--db {db_path}: cannot create its folder: {exc.strerror or exc}") from exc


def announce_new_keys(keys_dir: Path) -> None:
    click.echo(signing.generated_message(keys_dir), err=True)


def open_keys(keys_dir: str | Path) -> signing.KeyPair:
    """The key pair in --keys-dir, or exit 2 naming the file that is not a key. Generated on first use (its missing
    folders 0700), saying so in one line on stderr with the command that shows its public key."""
    try:
        config.make_folder(Path(keys_dir).absolute().parent)
    except OSError as exc:
        raise UsageProblem(f"--keys-dir {keys_dir}: cannot create the keys folder: {exc.strerror or exc}") from exc
    try:
        return signing.load_keys(keys_dir, on_generated=announce_new_keys)
    except signing.KeyFileError as exc:
        raise UsageProblem(f"--keys-dir {keys_dir}: {exc}") from exc
