"""Commands that talk to a running `accessrc-sim serve` (tail, trigger): `--server`, the admin key, and the
server's answers turned into clear messages (exit 2 when the server cannot be reached or refuses the key)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click
import requests

from ..config import ENV_API_KEY
from .errors import UsageProblem
from .options import EnvOption
from .send import answer_message

F = TypeVar("F", bound=Callable)
DEFAULT_SERVER = "http://127.0.0.1:8080"


def server_options(f: F) -> F:
    """`--server URL` (default the local serve) and `--api-key` (env ACCESSRC_SIM_API_KEY): the admin key."""
    f = click.option(
        "--api-key",
        cls=EnvOption,
        envvar=ENV_API_KEY,
        help=f"The simulator's admin key, as `serve` printed it (env {ENV_API_KEY}).",
    )(f)
    return click.option(
        "--server",
        default=DEFAULT_SERVER,
        show_default=True,
        metavar="URL",
        help="Base URL of a running `accessrc-sim serve`.",
    )(f)


class Server:
    """One running simulator: its base URL and admin key."""

    def __init__(self, url: str, api_key: str | None, session: requests.Session | None = None):
        if not url.lower().startswith(("http://", "https://")):
            raise UsageProblem(f"--server must be an http:// or https:// URL, got {url!r}")
        self.url = url.rstrip("/")
        self.api_key = api_key
        self.session = session or requests.Session()

    def headers(self, **extra: str) -> dict[str, str]:
        return ({"x-api-key": self.api_key} if self.api_key else {}) | extra

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One request; an unreachable server, a refused key or any non-2xx answer is a UsageProblem."""
        kwargs.setdefault("timeout", 10)
        try:
            resp = self.session.request(method, self.url + path, headers=self.headers(), **kwargs)
        except requests.RequestException as exc:
            raise self.unreachable(exc) from exc
        self.check(resp)
        return resp

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        """The answer's data (the `data` of the simulator's envelope, or the body itself)."""
        resp = self.request(method, path, **kwargs)
        try:
            body = resp.json()
        except ValueError:
            raise UsageProblem(f"{self.url}{path} did not answer JSON: is --server an accessrc-sim serve?") from None
        if isinstance(body, dict) and "data" in body and body.get("status") == "success":
            return body["data"]
        return body

    def unreachable(self, exc: Exception) -> UsageProblem:
        why = "connection refused" if isinstance(exc, requests.ConnectionError) else type(exc).__name__
        return UsageProblem(
            f"cannot reach the simulator at {self.url} ({why}): is `accessrc-sim serve` running there? (--server URL)"
        )

    def check(self, resp: requests.Response) -> None:
        if resp.ok:
            return
        said = answer_message(resp.content) or resp.reason
        if resp.status_code == 401:
            given = "the admin key given was refused" if self.api_key else "no admin key was given"
            raise UsageProblem(
                f"{self.url} answered 401 ({said}): {given}; pass the key `serve` printed at its first start "
                f"with --api-key or {ENV_API_KEY}"
            )
        if resp.status_code == 404 and "/api/" in resp.url and not said.startswith("no "):
            raise UsageProblem(f"{resp.url} answered 404: is --server {self.url} an accessrc-sim serve?")
        raise UsageProblem(f"{resp.url} answered {resp.status_code}: {said}")
