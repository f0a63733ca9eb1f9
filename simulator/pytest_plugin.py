"""pytest plugin (entry point `pytest11`, loaded when accessrc-sim is installed): the `accessrc_sender` fixture.

def test_hook(client, accessrc_sender):
    req = accessrc_sender("accessrc", hmac_secret="s3cr3t").request("DELIVERY_REQUEST_SENT")
    assert client.post("/hook", data=req.body, headers=req.headers).status_code == 200

The fixture is function-scoped (its keys live in the test's `tmp_path`); annotate it with
`simulator.testing.SenderFactory`. For a module- or session-scoped Sender, build one directly:
`Sender("accredit", keys_dir=tmp_path_factory.mktemp("keys"))`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pytest

if TYPE_CHECKING:  # the library is imported when the fixture is used, not when pytest starts
    from .testing import Sender, SenderFactory

KEYS_FOLDER = "accessrc-sim-keys"  # in the test's tmp_path


@pytest.fixture
def accessrc_sender(tmp_path: Path) -> SenderFactory:
    """A factory of `simulator.testing.Sender`: `accessrc_sender("accredit")`, `accessrc_sender("accessrc",
    hmac_secret="s")`; keywords as `Sender`'s. Accredit's key pair is made in `tmp_path / "accessrc-sim-keys"`
    (this test's temporary folder) unless `keys_dir=` is given, so every Sender of one test shares it."""
    from .testing import Sender

    def make(platform: str = "accessrc", **auth: Any) -> Sender:
        if auth.get("keys_dir") is None:
            auth["keys_dir"] = tmp_path / KEYS_FOLDER
        return Sender(platform, **auth)

    return cast("SenderFactory", make)  # the Protocol spells out Sender's keywords for type checkers
