"""Mixpanel as a destination: `POST /import` in batches of up to 2,000 events.

docs.mixpanel.com/reference/import-events: HTTP Basic with the project token as user name (or a
service account plus `project_id`), `strict=1` so failures are itemised; `$insert_id` makes a
resend of the same event a no-op, so retries and replays never double-count. A 400 names the
failed records and the rest are imported: only those fail; 429 carries no Retry-After.
"""

from __future__ import annotations

import hashlib
from typing import Any

from marshmallow import ValidationError, fields, validates_schema

from pipeline.errors import PermanentError
from pipeline.providers.base import Batch, DeliveryRef, DestinationContext, Outcome
from pipeline.providers.shared.analytics import (
    AnalyticsDestination,
    analytics_name,
    analytics_properties,
    distinct_id,
)
from pipeline.providers.shared.clients import destination_client
from pipeline.providers.shared.instants import stored_instant
from pipeline.providers.shared.options import StrictOptions

BATCH_SIZE = 2000


class MixpanelOptions(StrictOptions):
    project_token = fields.Str(load_default=None)
    service_account = fields.Str(load_default=None)
    service_secret = fields.Str(load_default=None)
    project_id = fields.Str(load_default=None)

    @validates_schema
    def _some_credentials(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data.get("project_token") and not data.get("service_account"):
            raise ValidationError("Give a project_token or a service_account.", "project_token")
        if data.get("service_account") and not (
            data.get("service_secret") and data.get("project_id")
        ):
            raise ValidationError(
                "A service account needs service_secret and project_id.", "service_secret"
            )


def insert_id(idempotency_key: str) -> str:
    """Mixpanel's `$insert_id` allows 36 characters: the first 36 of a hash of our key."""
    return hashlib.sha256(idempotency_key.encode()).hexdigest()[:36]


def mixpanel_event(delivery: DeliveryRef, event: dict[str, Any]) -> dict[str, Any]:
    occurred = stored_instant(event["occurred_at"])
    properties = {
        "time": int(occurred.timestamp() * 1000),
        "distinct_id": distinct_id(event),
        "$insert_id": insert_id(delivery.idempotency_key),
        **analytics_properties(event),
    }
    return {"event": analytics_name(event), "properties": properties}


class MixpanelDestination(AnalyticsDestination):
    name = "mixpanel"
    batch_size = BATCH_SIZE
    default_api_base = "https://api.mixpanel.com"
    options_schema = MixpanelOptions

    def perform_batch(self, ctx: DestinationContext, items: Batch) -> dict[int, Outcome]:
        options = ctx.destination.options
        params = {"strict": "1"}
        if options.get("service_account"):
            auth = (options["service_account"], options["service_secret"])
            params["project_id"] = options["project_id"]
        else:
            auth = (options["project_token"], "")
        client = destination_client(ctx, "mixpanel", auth=auth)
        batch = [mixpanel_event(delivery, event) for delivery, event in items]
        response = client.request("POST", "/import", params=params, json=batch, accept=(400,))
        failed: dict[int, str] = {}
        if response.status_code == 400:
            answer = response.json()
            for record in answer.get("failed_records") or []:
                failed[int(record.get("index", -1))] = str(record.get("message", "rejected"))[:200]
            if not failed:
                raise PermanentError(
                    "Mixpanel rejected the whole batch", reason="http_400", http_status=400
                )
        results: dict[int, Outcome] = {}
        for index, (delivery, _event) in enumerate(items):
            if index in failed:
                results[delivery.id] = PermanentError(
                    f"Mixpanel rejected the event: {failed[index]}",
                    reason="record_rejected",
                    http_status=400,
                )
            else:
                results[delivery.id] = {"insert_id": batch[index]["properties"]["$insert_id"]}
        return results


DESTINATION = MixpanelDestination()
