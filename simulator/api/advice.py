"""What an inferred rule of a platform API would have refused (issue 12): accepted and said in the answer's
`advice` list, which the platform-API call log (`GET /api/calls`, the dashboard, `tail`) keeps with the answer;
refused (400 naming the rule) only when the server runs with `--strict` (app config STRICT). A documented rule
always refuses. The one helper of the subscription APIs (accessrc, accredit) and the calls back (provider_calls,
print_queue).
"""

from __future__ import annotations

from flask import Response, current_app

from .. import rules
from .errors import ApiError, json_response


def note(text: str, rule: str) -> str:
    """One advice line: what was accepted and the inferred rule it breaks."""
    return f"{text} (inferred rule {rule})"


def strict() -> bool:
    """The server was started with --strict: inferred rules refuse like documented ones."""
    return bool(current_app.config.get("STRICT"))


def advisory(rule: str) -> bool:
    """A breach of `rule` is advice, not a refusal: the rule is inferred (registry) and the server is not strict."""
    return not strict() and not rules.get(rule).documented


def answer(body: dict, advice: list[str]) -> Response:
    """`body` as JSON, with its `advice` list when there is any."""
    return json_response({**body, "advice": advice} if advice else body)


def breach(advice: list[str], text: str, rule: str, field: str | None, code: str | None = None) -> None:
    """An inferred `rule` broken: a note in `advice`, or with --strict a 400 naming the rule (and `code`)."""
    if strict():
        raise ApiError(400, f"{text} (rule {rule}, inferred; refused: --strict)", field, code)
    advice.append(note(text, rule))
