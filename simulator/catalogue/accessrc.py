"""AccessRC events (seeds 000-002 and ../shared/platforms/accessrc.md)."""

from __future__ import annotations

import re

from .advice import Advisory, at, matches, not_negative, one_of
from .base import EventSpec, GenContext

REQUEST_TYPES = ("Delivery Channel Create", "Delivery Channel Update", "Delivery Channel Update Status")
REJECTION_REASONS = (
    "Description is not clear enough",
    "Short description is too vague",
    "Budget exceeds the programme allocation",
    "Availability period overlaps an existing channel",
    "Delivery options are missing the IBAN field",
    "Channel name duplicates an existing delivery channel",
)
IMPORT_ERRORS = (
    "Invalid phone number format",
    "Missing required field: country",
    "Missing required field: dateOfBirth",
    "Invalid email format",
    "Duplicate application for the same beneficiary",
    "Unknown programme location code",
    "Household size must be a positive number",
)
MANDATORY_CRITERIA = (
    ("AllMembersProfile", "All Members Profile"),
    ("ApplicationLocation", "Application Location"),
    ("FocalPointLocation", "Focal Point Location"),
    ("FocalPointProfile", "Focal Point Profile"),
    ("HasReceivedAnyAssistance", "Has Received Any Assistance?"),
    ("IsMigrant", "Is Migrant?"),
)
ADDITIONAL_CRITERIA = (
    ("IsAChild", "Is A Child?"),
    ("IsPersonElderly", "Is Person Elderly?"),
    ("IsSingleAdultHeadedHh", "Is Single Adult Headed Household?"),
    ("HasAtLeastNDependents", "Has At Least N Dependents?"),
)
EVALUATIONS = {"FITS_CRITERIA": "Fits Criteria", "NOT_VALIDATED": "Not Validated"}
CAMPAIGNS = (
    "Winter cash assistance, round 2",
    "Emergency food vouchers, March",
    "Rent support for displaced families",
    "School supplies grant 2025",
    "Cash for protection, cohort B",
)
BANKS = ("Example Bank", "First Investment Bank", "UniCredit Bulbank", "Raiffeisen Bank", "Postbank")


def message_by_status(payload: dict) -> list[str]:
    status, message = payload.get("status"), payload.get("message")
    if status == "Approved" and message != "":
        return [f"message: {message!r} with Approved (the documented Approved payload has an empty message)"]
    if status == "Rejected" and message == "":
        return ["message: empty with Rejected (the documented Rejected payload gives the reason)"]
    return []


MONTH_FIRST = r"(0[1-9]|1[0-2])/(0[1-9]|[12]\d|3[01])/\d{4} ([01]\d|2[0-3]):[0-5]\d:[0-5]\d"
EXAMPLE_DATE = r"\d{2}/\d{2}/\d{4} \d{2}:\d{2}:\d{2}"  # the shape of the one documented example
requested_date_shape = matches(
    "requestedDate", EXAMPLE_DATE, "NN/NN/NNNN NN:NN:NN like the documented example 04/07/2025 06:42:29 (no zone)"
)


def requested_date_month_first(payload: dict) -> list[str]:
    """Month first, on dates of the example's shape (another shape is requested_date_shape's advice)."""
    date = payload.get("requestedDate") if isinstance(payload, dict) else None
    if not isinstance(date, str) or not re.fullmatch(EXAMPLE_DATE, date):
        return []
    return matches("requestedDate", MONTH_FIRST, "MM/dd/yyyy HH:mm:ss (month first)")(payload)


def delivery_channel_status_updated(ctx: GenContext) -> dict:
    status = ctx.hint("status", ctx.choice(("Approved", "Rejected")), str)
    requested = ctx.before_now(10 * 60, 3 * 24 * 3600)
    return {
        "providerDeliveryChannelId": ctx.uuid(),
        "status": status,
        "message": "" if status == "Approved" else ctx.choice(REJECTION_REASONS),
        "requestType": ctx.hint("requestType", ctx.choice(REQUEST_TYPES), str),
        # Month first (MM/dd/yyyy): the docs' other examples are dated 2025-04-07 next to "04/07/2025".
        "requestedDate": requested.strftime("%m/%d/%Y %H:%M:%S"),
    }


def delivery_request_sent(ctx: GenContext) -> dict:
    count = ctx.count if ctx.count is not None else ctx.rng.randint(1, 3)
    deliveries = []
    for _ in range(count):
        deliveries.append(
            {
                "deliveryId": ctx.uuid(),
                "beneficiaryId": ctx.federation_id(),
                "deliveryOptions": [
                    {"key": "iban", "value": ctx.fake.iban()},
                    {"key": "bankName", "value": ctx.choice(BANKS)},
                    {"key": "accountHolder", "value": ctx.fake.name()},
                ],
            }
        )
    return {
        "deliveryRequestId": ctx.uuid(),
        "providerDeliveryChannelId": ctx.uuid(),
        "description": ctx.choice(CAMPAIGNS),
        "delivery": deliveries,
    }


def delivery_refund_requested(ctx: GenContext) -> dict:
    return {"deliveryId": ctx.uuid()}


def _criterion(ctx: GenContext, key: str, name: str, fits: bool, federation_id: str) -> dict:
    evaluation = "FITS_CRITERIA" if fits else "NOT_VALIDATED"
    if fits:
        notes = ""
    elif key.endswith("Profile"):
        notes = (
            f"Profile validation is still waiting: {federation_id}::Profile Status::Active"
            "::Profile Review Status::Waiting for Resubmission"
        )
    else:
        notes = ctx.choice(
            (f"{name} could not be validated yet", "Supporting document pending review", "Awaiting field verification")
        )
    return {
        "criteriaKey": key,
        "criteriaName": name,
        "evaluationKey": evaluation,
        "evaluationName": EVALUATIONS[evaluation],
        "notes": notes,
    }


def _application(ctx: GenContext) -> dict:
    federation_id = ctx.federation_id()
    first, last = ctx.fake.first_name(), ctx.fake.last_name()
    mandatory = [_criterion(ctx, k, n, ctx.rng.random() < 0.8, federation_id) for k, n in MANDATORY_CRITERIA]
    additional = [_criterion(ctx, k, n, ctx.rng.random() < 0.7, federation_id) for k, n in ADDITIONAL_CRITERIA]
    final = "FITS_CRITERIA" if all(c["evaluationKey"] == "FITS_CRITERIA" for c in mandatory) else "NOT_VALIDATED"
    if final == "NOT_VALIDATED" and ctx.rng.random() < 0.3:
        # Seed 001's own shape: FITS_CRITERIA although profile criteria are NOT_VALIDATED (still waiting).
        final = "FITS_CRITERIA"
    return {
        "beneficiaryFederationId": federation_id,
        "providerBeneficiaryId": ctx.uuid(),
        "applicationId": ctx.uuid(),
        "providerApplicationId": ctx.uuid(),
        "fullNameLocal": f"{first} {last}",
        "email": f"{first}.{last}@{ctx.fake.free_email_domain()}".lower(),
        "finalEvaluation": {"evaluationKey": final, "evaluationName": EVALUATIONS[final]},
        "mandotaryCriteria": mandatory,
        "additionalCriteria": additional,
    }


def program_eligibility_evaluated(ctx: GenContext) -> dict:
    count = ctx.count if ctx.count is not None else ctx.rng.randint(1, 3)
    return {
        "programId": ctx.uuid(),
        "providerProgramReferenceId": ctx.uuid(),
        "applications": [_application(ctx) for _ in range(count)],
    }


def final_matches_criteria(payload: dict) -> list[str]:
    problems = []
    for i, app in enumerate(payload.get("applications", [])):
        mandatory = app.get("mandotaryCriteria", [])
        fits = all(c.get("evaluationKey") == "FITS_CRITERIA" for c in mandatory)
        final = app.get("finalEvaluation", {}).get("evaluationKey")
        if fits != (final == "FITS_CRITERIA"):
            problems.append(
                f"applications.{i}.finalEvaluation: {final} does not match the mandatory criteria "
                "(FITS_CRITERIA exactly when every mandatory criterion fits)"
            )
    return problems


def evaluation_names(payload: dict) -> list[str]:
    problems = []
    for part in ("finalEvaluation", "mandotaryCriteria.*", "additionalCriteria.*"):
        for path, node in at(payload, "applications.*." + part):
            key, name = (
                (node.get("evaluationKey"), node.get("evaluationName")) if isinstance(node, dict) else (None, None)
            )
            if key in EVALUATIONS and name != EVALUATIONS[key]:
                problems.append(f"{path}.evaluationName: {name!r} is not the documented name of {key}")
    return problems


ELIGIBILITY_ADVISORIES = tuple(
    [
        Advisory(
            "accessrc.eligibility.evaluation-values", one_of(f"applications.*.{part}.evaluationKey", tuple(EVALUATIONS))
        )
        for part in ("finalEvaluation", "mandotaryCriteria.*", "additionalCriteria.*")
    ]
    + [
        Advisory("accessrc.eligibility.evaluation-values", evaluation_names),
        Advisory(
            "accessrc.eligibility.criteria-keys",
            one_of("applications.*.mandotaryCriteria.*.criteriaKey", tuple(k for k, _ in MANDATORY_CRITERIA)),
        ),
        Advisory(
            "accessrc.eligibility.criteria-keys",
            one_of("applications.*.additionalCriteria.*.criteriaKey", tuple(k for k, _ in ADDITIONAL_CRITERIA)),
        ),
        Advisory("accessrc.eligibility.final-evaluation", final_matches_criteria),
        Advisory(
            "accessrc.eligibility.federation-id-format",
            matches("applications.*.beneficiaryFederationId", r"VR-\d{9}", "VR- and nine digits"),
        ),
        Advisory(
            "accessrc.eligibility.email-format",
            matches("applications.*.email", r"[^@\s]+@[^@\s]+\.[^@\s]+", "an e-mail address"),
        ),
    ]
)


def program_pull_form(ctx: GenContext) -> dict:
    return {"programId": ctx.uuid()}


def applications_import_result(ctx: GenContext) -> dict:
    status = ctx.hint("status", None, str)
    total = ctx.hint("summary.totalRecords", None, int)
    failures = ctx.hint("summary.failureCount", None, int)
    successes = ctx.hint("summary.successCount", None, int)
    if total is None:
        total = successes + failures if successes is not None and failures is not None else ctx.rng.randint(20, 200)
    if failures is None and successes is not None:
        failures = total - successes
    if failures is None:
        if status == "SUCCESS":
            failures = 0
        elif status == "FAILED":
            failures = total
        else:
            failures = (
                ctx.rng.randint(1, max(1, min(total - 1, 12)))
                if status == "PARTIAL_SUCCESS" or ctx.rng.random() < 0.6
                else ctx.choice((0, total))
            )
    failures = max(0, min(failures, total))
    if status is None:
        status = "SUCCESS" if failures == 0 else "FAILED" if failures == total else "PARTIAL_SUCCESS"
    listed = failures
    if failures > 2 and "errors" not in ctx.hints and ctx.rng.random() < 0.3:
        # Seed 000's own shape: failureCount 5 with two errors entries (not every failure is listed).
        listed = ctx.rng.randint(1, failures - 1)
    return {
        "programId": ctx.uuid(),
        "providerImportId": ctx.uuid(),
        "summary": {"totalRecords": total, "successCount": total - failures, "failureCount": failures},
        "errors": [{"applicationId": ctx.uuid(), "error": ctx.choice(IMPORT_ERRORS)} for _ in range(listed)],
        "status": status,
    }


def counts_add_up(payload: dict) -> list[str]:
    summary = payload.get("summary", {})
    total, ok, bad = summary.get("totalRecords"), summary.get("successCount"), summary.get("failureCount")
    if None in (total, ok, bad) or ok + bad == total:
        return []
    return [f"summary: successCount {ok} + failureCount {bad} != totalRecords {total}"]


def one_error_per_failure(payload: dict) -> list[str]:
    bad, errors = payload.get("summary", {}).get("failureCount"), payload.get("errors", [])
    if bad is None or len(errors) == bad:
        return []
    return [f"errors: {len(errors)} entries for failureCount {bad}"]


def status_matches_counts(payload: dict) -> list[str]:
    summary = payload.get("summary", {})
    ok, bad = summary.get("successCount"), summary.get("failureCount")
    problems: list[str] = []
    if None in (ok, bad):
        return problems
    status = payload.get("status")
    if status == "SUCCESS" and bad != 0:
        problems.append("status: SUCCESS with failures")
    if status == "FAILED" and ok != 0:
        problems.append("status: FAILED with successes")
    if status == "PARTIAL_SUCCESS" and (ok == 0 or bad == 0):
        problems.append("status: PARTIAL_SUCCESS needs both successes and failures")
    return problems


CLOSED = "accessrc.payload.no-extra-fields"
PRESENT = "accessrc.payload.fields-present"

EVENTS = (
    EventSpec(
        name="DELIVERY_CHANNEL_STATUS_UPDATED",
        platform="accessrc",
        availability="live",
        description="IM team approved or rejected a delivery channel request (create, update or status change).",
        factory=delivery_channel_status_updated,
        reply_data=lambda p: {"providerDeliveryChannelId": p.get("providerDeliveryChannelId")},
        advisories=(
            Advisory("accessrc.dcsu.message-by-status", message_by_status),
            Advisory("accessrc.dcsu.requested-date-shape", requested_date_shape),
            Advisory("accessrc.dcsu.requested-date-month-first", requested_date_month_first),
        ),
        closed_rule=CLOSED,
        present_rule=PRESENT,
        inferred=("requestedDate shape (one example), month-first order and UTC zone",),
    ),
    EventSpec(
        name="DELIVERY_REQUEST_SENT",
        platform="accessrc",
        availability="live",
        description="A Program Manager created a delivery request; per-delivery amount fields were cut from the "
        "docs and are not sent (inferred: beneficiaryId format, deliveryOptions values, reply data).",
        factory=delivery_request_sent,
        count_of="delivery",
        closed_rule=CLOSED,
        present_rule=PRESENT,
        reply_data=lambda p: {"deliveryRequestId": p.get("deliveryRequestId")},
        inferred=("delivery[].beneficiaryId format", "deliveryOptions[].value", "reply data deliveryRequestId"),
    ),
    EventSpec(
        name="DELIVERY_REFUND_REQUESTED",
        platform="accessrc",
        availability="live",
        description="A refund of a delivery was raised (subscribable, though its own page says not implemented).",
        factory=delivery_refund_requested,
        closed_rule=CLOSED,
        present_rule=PRESENT,
        reply_data=lambda p: {"deliveryId": p.get("deliveryId")},
    ),
    EventSpec(
        name="PROGRAM_ELIGIBILITY_EVALUATED",
        platform="accessrc",
        availability="planned",
        aliases=("program.eligibility_evaluated",),
        description="Eligibility evaluations synced for a programme's applications (docs spell mandotaryCriteria).",
        factory=program_eligibility_evaluated,
        count_of="applications",
        advisories=ELIGIBILITY_ADVISORIES,
        closed_rule=CLOSED,
        present_rule=PRESENT,
        reply_data=lambda p: {},
        inferred=("finalEvaluation rule: FITS_CRITERIA exactly when all mandatory criteria fit",),
    ),
    EventSpec(
        name="PROGRAM_PULL_FORM",
        platform="accessrc",
        availability="planned",
        aliases=("program.pull_form",),
        description="Program Manager pulls the application form; the receiver returns the form in its reply.",
        factory=program_pull_form,
        closed_rule=CLOSED,
        present_rule=PRESENT,
        reply_data=lambda p: {"response": {"fields": []}},
        inferred=("form schema in the reply is unspecified",),
    ),
    EventSpec(
        name="APPLICATIONS_IMPORT_RESULT",
        platform="accessrc",
        availability="planned",
        description="Processing of imported applications finished: summary counts and errors of failed records.",
        factory=applications_import_result,
        closed_rule=CLOSED,
        present_rule=PRESENT,
        advisories=(
            Advisory("accessrc.import.counts-add-up", counts_add_up),
            Advisory(
                "accessrc.import.counts-not-negative",
                not_negative("summary.totalRecords", "summary.successCount", "summary.failureCount"),
            ),
            Advisory("accessrc.import.one-error-per-failure", one_error_per_failure),
            Advisory("accessrc.import.status-matches-counts", status_matches_counts),
        ),
        reply_data=lambda p: {},
    ),
)
