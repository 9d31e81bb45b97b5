"""Kajabi's public API (JSON:API, OAuth client credentials): one client with its token."""

from __future__ import annotations

import hashlib
from typing import Any

import redis
import requests

from pipeline import keys
from pipeline.delivery.http import ApiClient
from pipeline.errors import ConfigurationError, PermanentError

DEFAULT_API_BASE = "https://api.kajabi.com"


JSON_API = "application/vnd.api+json"


TOKEN_MARGIN = 60  # seconds: never send a token that may expire on the way


class KajabiApi:
    def __init__(
        self,
        api_base: str | None,
        options: Any,
        http: requests.Session,
        cache: redis.Redis,
        timeout: float = 10.0,
    ) -> None:
        self.options, self.cache = options, cache
        self.client = ApiClient(
            provider="kajabi",
            base_url=api_base or DEFAULT_API_BASE,
            session=http,
            timeout=timeout,
            headers={"Accept": JSON_API, "Content-Type": JSON_API},
        )
        seed = f"{self.client.base_url}|{options['client_id']}".encode()
        self.token_key = keys.access_token("kajabi", hashlib.sha256(seed).hexdigest()[:24])

    def token(self) -> str:
        cached = self.cache.get(self.token_key)
        if cached:
            return cached.decode() if isinstance(cached, bytes) else str(cached)
        form = {
            "grant_type": "client_credentials",
            "client_id": self.options["client_id"],
            "client_secret": self.options["client_secret"],
        }
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        }
        response = self.client.request(
            "POST", "/v1/oauth/token", data=form, headers=headers, accept=(400,)
        )
        if response.status_code == 400:
            raise ConfigurationError(
                "kajabi refused the client credentials in the config",
                reason="http_400",
                http_status=400,
            )
        found = response.json()
        ttl = max(int(found.get("expires_in") or 0) - TOKEN_MARGIN, 1)
        self.cache.set(self.token_key, found["access_token"], ex=ttl)
        return str(found["access_token"])

    def request(
        self, method: str, path: str, *, accept: tuple[int, ...] = (), **kwargs: Any
    ) -> requests.Response:
        """A call with the cached token; a 401 drops it and tries once with a fresh one."""
        for fresh in (False, True):
            headers = {"Authorization": f"Bearer {self.token()}"}
            response = self.client.request(
                method, path, headers=headers, accept=(*accept, 401), **kwargs
            )
            if response.status_code != 401:
                return response
            self.cache.delete(self.token_key)
            if fresh:
                break
        raise ConfigurationError(
            "kajabi refused the access token for these credentials",
            reason="http_401",
            http_status=401,
        )

    def find(self, collection: str, email: str) -> dict[str, Any] | None:
        """A contact or customer by exact e-mail (Kajabi's search is fuzzy over names and e-mails)."""
        params = {"filter[site_id]": self.options.get("site_id"), "filter[search]": email}
        found = self.request("GET", f"/v1/{collection}", params=params).json().get("data") or []
        wanted = email.strip().lower()
        match = (r for r in found if str(r["attributes"].get("email", "")).lower() == wanted)
        return next(match, None)

    def create_contact(self, email: str, name: str | None) -> dict[str, Any]:
        site = {"data": {"type": "sites", "id": str(self.options["site_id"])}}
        attributes = {"name": name or email.split("@", 1)[0], "email": email}
        body = {
            "data": {"type": "contacts", "attributes": attributes, "relationships": {"site": site}}
        }
        response = self.request("POST", "/v1/contacts", json=body, accept=(422,))
        if response.status_code == 422:
            # created meanwhile by another delivery for the same person: read it back
            contact = self.find("contacts", email)
            if contact is None:
                raise PermanentError(
                    "Kajabi refused the new contact", reason="contact_rejected", http_status=422
                )
            return contact
        created: dict[str, Any] = response.json()["data"]
        return created

    def held_offers(self, customer: dict[str, Any] | None) -> set[str]:
        if customer is None:
            return set()
        path = f"/v1/customers/{customer['id']}/relationships/offers"
        return {str(r["id"]) for r in self.request("GET", path).json().get("data") or []}
