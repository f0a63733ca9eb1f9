"""Exit codes and the usage error every command raises (Click prints `Error: ...`)."""

from __future__ import annotations

import click

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageProblem(click.ClickException):
    """Bad usage: printed as `Error: ...`, exit code 2."""

    exit_code = EXIT_USAGE
