"""`POST /webhooks/<source>`: check, record, answer. No provider API call happens here.

Order matters: size and type are checked before the body is read, the signature before the body
is parsed, and the event is committed before the answer; publishing comes last and may fail
(the sweeper publishes whatever is still `received`). A body whose signature verified is kept
even when it cannot be read (quarantined under its digest, `pipeline.flow.identify`), and still
answered 400 with the reason.
"""

from __future__ import annotations

import logging
import time

from flask import Blueprint, Response, jsonify, request

from pipeline.config.model import SourceConfig
from pipeline.errors import DatabaseUnavailable, SignatureError, UnstorableEvent
from pipeline.flow.identify import Identification, identify_body
from pipeline.log.ingest import IncomingEvent, Recorded
from pipeline.metrics.definitions import metrics
from pipeline.providers.base import SourceProvider
from pipeline.signatures.base import SignedRequest
from receivers.errors import ApiError
from receivers.intake import admit_unverified
from receivers.state import receiver_state
from receivers.tracing import current_trace_id

log = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__)

CONTENT_TYPES = {"json": "application/json", "form": "application/x-www-form-urlencoded"}
_STATUS = {"accepted": 202, "duplicate": 200, "conflict": 200, "ignored": 200, "quarantined": 202}


# what a refusal counts as in stackwire_webhooks_received_total (a 401 not listed: bad_signature,
# anything else not listed: malformed)
_REFUSED = {
    "stale_timestamp": "stale",
    "body_too_large": "too_large",
    "rate_limited": "rate_limited",
    "temporarily_unavailable": "unavailable",
}


@bp.route("/webhooks/<source_name>", methods=["GET", "HEAD", "POST"])
def receive(source_name: str) -> Response:
    # an unknown source is not counted: anyone may send any name, and a label must stay bounded
    source, provider = _source(source_name)
    if request.method != "POST":
        return _answer_get(provider)
    started = time.perf_counter()
    outcome = "error"
    try:
        response, outcome = _receive(source, provider)
        return response
    except ApiError as exc:
        outcome = exc.outcome or _REFUSED.get(
            exc.code, "bad_signature" if exc.status == 401 else "malformed"
        )
        raise
    finally:
        found = metrics()
        found.webhooks_received.labels(source.name, outcome).inc()
        found.receiver_latency.observe(time.perf_counter() - started)


def _receive(source: SourceConfig, provider: SourceProvider) -> tuple[Response, str]:
    state = receiver_state()
    body = _read_body(source, provider)
    signed = SignedRequest(body, request.headers, request.args, state.clock())  # type: ignore[arg-type]
    try:
        verified = provider.signature.verify(source, signed)
    except SignatureError as exc:
        raise ApiError(401, exc.code, exc.message) from None
    if verified.secret_index is not None:
        metrics().signing_secret_matched.labels(source.name, str(verified.secret_index)).inc()
    admit_unverified(state.redis, source)  # 429 while too many await verification (PayPal)
    # verified: from here on nothing is refused without being kept (quarantined if unreadable)
    found = identify_body(source, body, request.headers)  # type: ignore[arg-type]
    recorded = _record(source, provider, found, body, verified.secret_index)
    if found.refusal is not None:
        raise ApiError(400, found.refusal.code, found.refusal.message, outcome=recorded.outcome)
    if recorded.outcome == "accepted":
        state.publish_verify(recorded.event_id, recorded.lane)
    response = jsonify(status=recorded.outcome, event_id=recorded.event_id)
    response.status_code = _STATUS[recorded.outcome]
    return response, recorded.outcome


def _record(
    source: SourceConfig,
    provider: SourceProvider,
    found: Identification,
    body: bytes,
    secret_index: int | None,
) -> Recorded:
    identified = found.identified
    incoming = IncomingEvent(
        source=source.name,
        provider=provider.name,
        external_id=identified.external_id,
        provider_type=identified.provider_type,
        lane=provider.lane_for(identified.provider_type) if found.quarantine is None else None,
        body=body,
        headers={h: request.headers[h] for h in provider.stored_headers if h in request.headers},
        secret_index=secret_index,
        quarantine=found.quarantine,
        trace_id=current_trace_id(),
    )
    try:
        return receiver_state().writer.record(incoming)
    except DatabaseUnavailable:
        log.warning(
            "database unavailable; asked the provider to retry", extra={"source": source.name}
        )
        raise ApiError(
            503,
            "temporarily_unavailable",
            "Stackwire cannot store events right now; retry later.",
            retry_after=5,
        ) from None
    except UnstorableEvent:
        raise ApiError(
            400, "unstorable_event", "The event holds a value that cannot be stored."
        ) from None


def _source(name: str) -> tuple[SourceConfig, SourceProvider]:
    source = receiver_state().config.sources.get(name)
    if source is None or not source.enabled:
        raise ApiError(404, "unknown_source", f"No webhook source named {name!r} is configured.")
    return source, source.provider


def _answer_get(provider: SourceProvider) -> Response:
    if provider.answers_get:
        return jsonify(status="ok")
    raise ApiError(405, "method_not_allowed", "Webhooks are delivered with POST.")


def _read_body(source: SourceConfig, provider: SourceProvider) -> bytes:
    expected = CONTENT_TYPES[provider.body_format]
    if (request.mimetype or "") != expected:
        raise ApiError(
            415, "unsupported_media_type", f"This source accepts {expected} bodies only."
        )
    limit = source.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, "body_too_large", f"The body is larger than {limit} bytes.")
    # a chunked body has no length up front: read one byte past the limit and refuse if it is there
    body = request.stream.read(limit + 1)
    if len(body) > limit:
        raise ApiError(413, "body_too_large", f"The body is larger than {limit} bytes.")
    if not body:
        raise ApiError(400, "empty_body", "The request has no body.")
    return body
