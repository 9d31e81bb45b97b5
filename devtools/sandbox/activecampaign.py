"""ActiveCampaign API v3, emulated: contact sync and lookup, list status and list memberships
(`GET /contacts/{id}/contactLists`), tags and contact tags.

As the v3 reference describes it (api-evangelist/activecampaign `openapi/activecampaign-{contacts,
tags}-api-openapi.yml`): paths under `/api/3`, header `Api-Token`; validation errors 422
`{"errors": [{"title", "detail", "code", "source": {"pointer"}}]}`, missing records 404
`{"message": "No Result found for …"}`; `GET /tags?search=` matches "contains"; list status "1"
subscribed, "2" unsubscribed. Unconfirmed and emulated as our best reading [U]: a refused token
answers 403 `{"message": "You are not authorized to access this resource"}`; a duplicate tag name
answers 422; `POST /contactTags` for a tag the contact already has creates a second link (so a
double attach shows as a duplicate effect); a 429 answers `{"message": …}`.

Effects are real-world changes: `contact.created`, `contact_list.subscribed` /
`contact_list.unsubscribed` (the status changed), `tag.created`, `contact_tag.created` (every link).

Control (`/_sandbox/activecampaign/webhooks`): a contact subscribes, unsubscribes or gets a tag;
the form-encoded webhook ActiveCampaign would post comes back.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, jsonify, request

from devtools.sandbox.app import sandbox_state, set_effect

blueprint = Blueprint("sandbox_activecampaign", __name__)
control = Blueprint("sandbox_activecampaign_control", __name__)
PREFIX = "/api/3"
ACCOUNT_ZONE = ZoneInfo("America/Chicago")  # the account's zone: ActiveCampaign shows local times
STATUS_EFFECTS = {"1": "contact_list.subscribed", "2": "contact_list.unsubscribed"}


def error_response(status: int, message: str) -> Response:
    if status in (400, 422):
        body: dict[str, Any] = {
            "errors": [
                {
                    "title": message,
                    "detail": "",
                    "code": "invalid",
                    "source": {"pointer": "/data/attributes"},
                }
            ]
        }
    else:
        body = {"message": message}
    response = jsonify(body)
    response.status_code = status
    return response


def _now() -> str:
    return datetime.now(ACCOUNT_ZONE).isoformat(timespec="seconds")


def _store(name: str) -> dict[Any, Any]:
    return sandbox_state().store("activecampaign", name)


@blueprint.before_request
def _authenticate() -> Response | None:
    token = request.headers.get("Api-Token", "")
    if token and token not in _store("revoked"):
        return None
    return error_response(403, "You are not authorized to access this resource")


def _by_email(email: str) -> dict[str, Any] | None:
    wanted = email.strip().lower()
    return next((c for c in _store("contacts").values() if c["email"] == wanted), None)


def sync_contact(email: str, first: str | None, last: str | None) -> tuple[dict[str, Any], bool]:
    with sandbox_state().lock:
        found = _by_email(email)
        created = found is None
        if found is None:
            contact_id = str(sandbox_state().new_id(numeric=True))
            found = {
                "id": contact_id,
                "email": email.strip().lower(),
                "firstName": "",
                "lastName": "",
                "phone": "",
                "cdate": _now(),
                "udate": _now(),
            }
            _store("contacts")[contact_id] = found
        found.update({k: v for k, v in (("firstName", first), ("lastName", last)) if v})
        found["udate"] = _now()
        return found, created


@blueprint.post(f"{PREFIX}/contact/sync")
def contact_sync() -> Response:
    contact = (request.get_json(silent=True) or {}).get("contact") or {}
    email = contact.get("email")
    if not isinstance(email, str) or "@" not in email:
        return error_response(422, "Contact Email Address is not valid.")
    found, created = sync_contact(email, contact.get("firstName"), contact.get("lastName"))
    if created:
        set_effect("contact.created", found["email"])
    response = jsonify(fieldValues=[], contact=found)
    response.status_code = 201 if created else 200
    return response


@blueprint.get(f"{PREFIX}/contacts")
def list_contacts() -> Response:
    email = request.args.get("email")
    with sandbox_state().lock:
        found = [
            c for c in _store("contacts").values() if email is None or c["email"] == email.lower()
        ]
    return jsonify(contacts=found, meta={"total": str(len(found))})


def set_list_status(contact_id: str, list_id: str, status: str) -> bool:
    """True when the contact's status on the list changed."""
    with sandbox_state().lock:
        memberships = _store("contact_lists")
        changed = memberships.get((contact_id, list_id)) != status
        memberships[(contact_id, list_id)] = status
        return changed


@blueprint.post(f"{PREFIX}/contactLists")
def update_list_status() -> Response:
    link = (request.get_json(silent=True) or {}).get("contactList") or {}
    contact_id, list_id, status = (str(link.get(k, "")) for k in ("contact", "list", "status"))
    if not list_id.isdigit() or status not in STATUS_EFFECTS:
        return error_response(422, "The list and a status of 1 or 2 are required.")
    contact = _store("contacts").get(contact_id)
    if contact is None:
        return error_response(404, f"No Result found for Subscriber with id {contact_id}")
    if set_list_status(contact_id, list_id, status):
        set_effect(STATUS_EFFECTS[status], f"{list_id}:{contact_id}")
    return jsonify(
        contacts=[contact],
        contactList={
            "contact": contact_id,
            "list": list_id,
            "status": int(status),
            "sdate": _now(),
            "sourceid": "0",
            "id": f"{list_id}{contact_id}",
        },
    )


@blueprint.get(f"{PREFIX}/contacts/<contact_id>/contactLists")
def contact_lists(contact_id: str) -> Response:
    contact = _store("contacts").get(contact_id)
    if contact is None:
        return error_response(404, f"No Result found for Subscriber with id {contact_id}")
    with sandbox_state().lock:
        memberships = [
            (list_id, status)
            for (member, list_id), status in _store("contact_lists").items()
            if member == contact_id
        ]
    return jsonify(contactLists=[_membership(contact, lst, st) for lst, st in memberships])


def _membership(contact: dict[str, Any], list_id: str, status: str) -> dict[str, Any]:
    """A list membership field for field as retrieve-contact-list-memberships shows one."""
    link_id = f"{list_id}{contact['id']}"
    links = ("automation", "list", "contact", "form", "autosyncLog", "campaign")
    return {
        "contact": contact["id"],
        "list": list_id,
        "form": None,
        "seriesid": "0",
        "sdate": contact["cdate"],
        "udate": contact["udate"],
        "status": status,
        "responder": "1",
        "sync": "0",
        "unsubreason": None,
        "campaign": None,
        "message": None,
        "first_name": contact["firstName"],
        "last_name": contact["lastName"],
        "ip4Sub": "0",
        "sourceid": "0",
        "autosyncLog": None,
        "ip4_last": "0",
        "ip4Unsub": "0",
        "created_timestamp": contact["cdate"][:19].replace("T", " "),
        "updated_timestamp": contact["udate"][:19].replace("T", " "),
        "created_by": None,
        "updated_by": None,
        "unsubscribeAutomation": None,
        "links": {name: f"{PREFIX}/contactLists/{link_id}/{name}" for name in links},
        "id": link_id,
        "automation": None,
    }


def _tag_view(tag: dict[str, Any]) -> dict[str, Any]:
    return {**tag, "links": {"contactGoalTags": f"{PREFIX}/tags/{tag['id']}/contactGoalTags"}}


@blueprint.get(f"{PREFIX}/tags")
def list_tags() -> Response:
    search = request.args.get("search", "")
    limit, offset = min(int(request.args.get("limit", 20)), 100), int(request.args.get("offset", 0))
    with sandbox_state().lock:
        found = [t for t in _store("tags").values() if search.lower() in t["tag"].lower()]
    if request.args.get("orders[search]") == "weight":
        found.sort(key=lambda t: (t["tag"].lower() != search.lower(), t["tag"]))
    page = [_tag_view(t) for t in found[offset : offset + limit]]
    return jsonify(tags=page, meta={"total": str(len(found))})


def find_or_create_tag(name: str) -> tuple[dict[str, Any], bool]:
    with sandbox_state().lock:
        found = next((t for t in _store("tags").values() if t["tag"] == name), None)
        if found is not None:
            return found, False
        tag_id = str(sandbox_state().new_id(numeric=True))
        found = {
            "tagType": "contact",
            "tag": name,
            "description": "",
            "cdate": _now(),
            "id": tag_id,
        }
        _store("tags")[tag_id] = found
        return found, True


@blueprint.post(f"{PREFIX}/tags")
def create_tag() -> Response:
    tag = (request.get_json(silent=True) or {}).get("tag") or {}
    name = tag.get("tag")
    if not isinstance(name, str) or not name.strip():
        return error_response(422, "Tag name is required.")
    found, created = find_or_create_tag(name)
    if not created:
        return error_response(422, "Duplicate tag name.")
    set_effect("tag.created", name)
    response = jsonify(tag=_tag_view(found))
    response.status_code = 201
    return response


def link_tag(contact_id: str, tag_id: str) -> dict[str, Any]:
    with sandbox_state().lock:
        link_id = str(sandbox_state().new_id(numeric=True))
        link = {"contact": contact_id, "tag": tag_id, "cdate": _now(), "id": link_id}
        _store("contact_tags")[link_id] = link
        return link


@blueprint.post(f"{PREFIX}/contactTags")
def add_contact_tag() -> Response:
    link = (request.get_json(silent=True) or {}).get("contactTag") or {}
    contact_id, tag_id = str(link.get("contact", "")), str(link.get("tag", ""))
    if contact_id not in _store("contacts"):
        return error_response(404, f"No Result found for Subscriber with id {contact_id}")
    if tag_id not in _store("tags"):
        return error_response(404, f"No Result found for Tag with id {tag_id}")
    created = link_tag(contact_id, tag_id)
    set_effect("contact_tag.created", f"{contact_id}:{tag_id}")
    response = jsonify(contactTag=created)
    response.status_code = 201
    return response


@blueprint.get(f"{PREFIX}/contacts/<contact_id>/contactTags")
def contact_tags(contact_id: str) -> Response:
    if contact_id not in _store("contacts"):
        return error_response(404, f"No Result found for Subscriber with id {contact_id}")
    with sandbox_state().lock:
        links = [t for t in _store("contact_tags").values() if t["contact"] == contact_id]
    return jsonify(contactTags=links)


# -- what a contact and ActiveCampaign would do: the webhooks -----------------------------------

WEBHOOK_TYPES = ("subscribe", "unsubscribe", "contact_tag_added")


def webhook(spec: dict[str, Any]) -> str:
    """Applies the change to the account; returns the form body ActiveCampaign would post."""
    kind, list_id = spec["type"], str(spec.get("list", "1"))
    contact, _ = sync_contact(spec["email"], spec.get("first_name"), spec.get("last_name"))
    if kind in ("subscribe", "unsubscribe"):
        set_list_status(contact["id"], list_id, "1" if kind == "subscribe" else "2")
    tag_name = str(spec.get("tag") or "tagged")
    if kind == "contact_tag_added":
        tag, _ = find_or_create_tag(tag_name)
        link_tag(contact["id"], tag["id"])
    with sandbox_state().lock:
        names = sorted(
            _store("tags")[link["tag"]]["tag"]
            for link in _store("contact_tags").values()
            if link["contact"] == contact["id"]
        )
    fields = [
        ("url", spec.get("url", "https://example.test/webhooks")),
        ("type", kind),
        ("date_time", spec.get("date_time") or _now()),
        ("initiated_by", "admin"),
        ("initiated_from", "admin"),
        ("list", list_id if kind != "contact_tag_added" else "0"),
        ("contact[id]", contact["id"]),
        ("contact[email]", contact["email"]),
        ("contact[first_name]", contact["firstName"]),
        ("contact[last_name]", contact["lastName"]),
        ("contact[phone]", contact["phone"]),
        ("contact[ip]", "127.0.0.1"),
        ("contact[tags]", ", ".join(names)),
        ("contact[orgname]", ""),
    ]
    if kind == "contact_tag_added":
        fields.append(("tag", tag_name))
    return urlencode(fields)


@control.post("/webhooks")
def control_webhook() -> Response:
    spec: dict[str, Any] = request.get_json(force=True) or {}
    if spec.get("type") not in WEBHOOK_TYPES or not isinstance(spec.get("email"), str):
        return error_response(400, "Give a known webhook 'type' and an 'email'.")
    return jsonify(body=webhook(spec), content_type="application/x-www-form-urlencoded")


@control.post("/keys/<key>/revoke")
def control_revoke(key: str) -> Response:
    _store("revoked")[key] = True
    return jsonify(status="revoked")
