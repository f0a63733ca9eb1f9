"""`GET /api/openapi.json`: the OpenAPI 3.1 document of every route (no key needed to read it)."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

from flask import Blueprint

from .errors import json_response

bp = Blueprint("openapi", __name__)


@lru_cache(maxsize=1)
def document() -> dict:
    return json.loads(resources.files("simulator.api").joinpath("openapi.json").read_text("utf-8"))


@bp.get("/api/openapi.json")
def openapi_json():
    return json_response(document())
