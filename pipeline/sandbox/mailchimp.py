"""Mailchimp Marketing API 3.0, emulated: list members (upsert by subscriber hash) and tags.

Auth: HTTP Basic with any user name and the API key (`…-us1`). Errors are problem-details JSON
(`type, title, status, detail, instance`); throttling is a 429 without Retry-After.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from flask import Blueprint, Response, jsonify, request

from pipeline.sandbox.app import sandbox_state, set_effect

blueprint = Blueprint("sandbox_mailchimp", __name__)
TITLES = {400: "Invalid Resource", 401: "API Key Invalid", 404: "Resource Not Found",
          429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}  # fmt: skip


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
            found = {"id": subscriber_hash, "email_address": email, "status": status,
                      "merge_fields": {}, "tags": [], "list_id": list_id}  # fmt: skip
            members[subscriber_hash] = found
        elif body.get("status"):
            found["status"] = body["status"]
        found["merge_fields"].update(body.get("merge_fields") or {})
        member = found
    set_effect("member.created" if created else "member.updated",
               f"{list_id}:{subscriber_hash}" + ("" if created else f":{len(sandbox_state().calls)}"))  # fmt: skip
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
