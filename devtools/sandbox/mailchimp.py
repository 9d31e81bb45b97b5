"""Mailchimp Marketing API 3.0, emulated: list members (upsert by subscriber hash) and tags.

Auth: HTTP Basic with any user name and the API key (`…-us1`). Errors are problem-details JSON
(`type, title, status, detail, instance`); throttling is a 429 without Retry-After.

Control (`/_sandbox/mailchimp/lists/<list>/webhooks/<type>`): a person subscribes, unsubscribes,
is cleaned or edits their profile; the member changes and the audience webhook Mailchimp would
post comes back, form-encoded field for field as the "Sync audience data with webhooks" guide
shows (`type`, `fired_at` as "YYYY-MM-DD HH:MM:SS" UTC, `data[...]`).
"""

from __future__ import annotations

import base64
import hashlib
import time
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, jsonify, request

from devtools.sandbox.app import sandbox_state, set_effect

blueprint = Blueprint("sandbox_mailchimp", __name__)
control = Blueprint("sandbox_mailchimp_control", __name__)
TITLES = {
    400: "Invalid Resource",
    401: "API Key Invalid",
    404: "Resource Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def error_response(status: int, message: str) -> Response:
    response = jsonify(
        type="https://mailchimp.com/developer/marketing/docs/errors/",
        title=TITLES.get(status, "Error"),
        status=status,
        detail=message,
        instance="",
    )
    response.status_code = status
    response.mimetype = "application/problem+json"
    return response


@blueprint.before_request
def _authenticate() -> Response | None:
    header = request.headers.get("Authorization", "")
    if header.startswith("Basic "):
        key = base64.b64decode(header[6:]).decode(errors="replace").partition(":")[2]
        if "-" in key and key not in sandbox_state().store("mailchimp", "revoked"):
            return None
    return error_response(
        401, "Your API key may be invalid, or you've attempted to access the wrong datacenter."
    )


def _members(list_id: str) -> dict[str, dict[str, Any]]:
    return sandbox_state().store("mailchimp", f"list:{list_id}")


@blueprint.put("/3.0/lists/<list_id>/members/<subscriber_hash>")
def upsert_member(list_id: str, subscriber_hash: str) -> Response:
    body = request.get_json(silent=True) or {}
    email = str(body.get("email_address", ""))
    if "@" not in email:
        return error_response(400, "The resource submitted could not be validated.")
    if hashlib.md5(email.lower().encode(), usedforsecurity=False).hexdigest() != subscriber_hash:
        return error_response(400, "The subscriber hash does not match the email address.")
    with sandbox_state().lock:
        members = _members(list_id)
        found = members.get(subscriber_hash)
        created = found is None
        if found is None:
            status = body.get("status") or body.get("status_if_new")
            if not status:
                return error_response(400, "The status_if_new field is required for new members.")
            found = {
                "id": subscriber_hash,
                "email_address": email,
                "status": status,
                "merge_fields": {},
                "tags": [],
                "list_id": list_id,
            }
            members[subscriber_hash] = found
        elif body.get("status"):
            found["status"] = body["status"]
        found["merge_fields"].update(body.get("merge_fields") or {})
        member = found
    set_effect(
        "member.created" if created else "member.updated",
        f"{list_id}:{subscriber_hash}" + ("" if created else f":{len(sandbox_state().calls)}"),
    )
    return jsonify(member)


@blueprint.patch("/3.0/lists/<list_id>/members/<subscriber_hash>")
def update_member(list_id: str, subscriber_hash: str) -> Response:
    body = request.get_json(silent=True) or {}
    with sandbox_state().lock:
        member = _members(list_id).get(subscriber_hash)
        if member is None:
            return error_response(404, "The requested resource could not be found.")
        if body.get("status"):
            member["status"] = body["status"]
    set_effect("member.updated", f"{list_id}:{subscriber_hash}:{len(sandbox_state().calls)}")
    return jsonify(member)


@blueprint.post("/3.0/lists/<list_id>/members/<subscriber_hash>/tags")
def update_tags(list_id: str, subscriber_hash: str) -> Response:
    body = request.get_json(silent=True) or {}
    with sandbox_state().lock:
        member = _members(list_id).get(subscriber_hash)
        if member is None:
            return error_response(404, "The requested resource could not be found.")
        for tag in body.get("tags") or []:
            if tag.get("status") == "active" and tag["name"] not in member["tags"]:
                member["tags"].append(tag["name"])
            elif tag.get("status") == "inactive" and tag["name"] in member["tags"]:
                member["tags"].remove(tag["name"])
    return Response(status=204)


@blueprint.get("/3.0/lists/<list_id>/members/<subscriber_hash>")
def get_member(list_id: str, subscriber_hash: str) -> Response:
    member = _members(list_id).get(subscriber_hash)
    if member is None:
        return error_response(404, "The requested resource could not be found.")
    return jsonify(member)


# -- what a person and Mailchimp would do: the audience webhooks -------------------------------

WEBHOOK_TYPES = {
    "subscribe": "subscribed",
    "unsubscribe": "unsubscribed",
    "cleaned": "cleaned",
    "profile": None,
}


def audience_webhook(list_id: str, kind: str, spec: dict[str, Any]) -> str:
    """Changes the member as Mailchimp would and returns the form body it would post."""
    email = str(spec["email"])
    member_hash = hashlib.md5(email.lower().encode(), usedforsecurity=False).hexdigest()
    with sandbox_state().lock:
        members = _members(list_id)
        member = members.setdefault(
            member_hash,
            {
                "id": member_hash,
                "email_address": email,
                "status": "subscribed",
                "merge_fields": {},
                "tags": [],
                "list_id": list_id,
            },
        )
        merges = {"FNAME": spec.get("first_name", ""), "LNAME": spec.get("last_name", "")}
        member["merge_fields"].update({k: v for k, v in merges.items() if v})
        if WEBHOOK_TYPES[kind]:
            member["status"] = WEBHOOK_TYPES[kind]
    fired_at = spec.get("fired_at") or time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    fields: list[tuple[str, str]] = [("type", kind), ("fired_at", fired_at)]
    if kind == "cleaned":
        fields += [
            ("data[list_id]", list_id),
            ("data[campaign_id]", spec.get("campaign_id", "")),
            ("data[reason]", spec.get("reason", "hard")),
            ("data[email]", email),
        ]
        return urlencode(fields)
    fields += [("data[id]", member_hash), ("data[email]", email), ("data[email_type]", "html")]
    if kind == "unsubscribe":
        fields += [
            ("data[action]", spec.get("action", "unsub")),
            ("data[reason]", spec.get("reason", "manual")),
            ("data[campaign_id]", spec.get("campaign_id", "")),
        ]
    fields += [("data[ip_opt]", "10.20.10.30")]
    if kind != "unsubscribe":
        fields += [("data[ip_signup]", "10.20.10.30")]
    fields += [
        ("data[web_id]", str(int(member_hash[:7], 16))),
        ("data[list_id]", list_id),
        ("data[merges][EMAIL]", email),
        ("data[merges][FNAME]", merges["FNAME"]),
        ("data[merges][LNAME]", merges["LNAME"]),
        ("data[merges][INTERESTS]", ""),
    ]
    return urlencode(fields)


@control.post("/lists/<list_id>/webhooks/<kind>")
def control_webhook(list_id: str, kind: str) -> Response:
    spec = request.get_json(force=True) or {}
    if kind not in WEBHOOK_TYPES or not isinstance(spec.get("email"), str):
        return error_response(400, "Give a known webhook type and an 'email'.")
    body = audience_webhook(list_id, kind, spec)
    return jsonify(body=body, content_type="application/x-www-form-urlencoded")
