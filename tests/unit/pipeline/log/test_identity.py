"""One contact per person: normalization, the matching hash, the identity graph in PostgreSQL."""

from __future__ import annotations

import pytest

from pipeline.log.db import create_db_engine
from pipeline.log.identity import email_hash, normalize_email, resolve_contact
from pipeline.settings import Settings
from tests.support.db import rows


@pytest.mark.parametrize(
    ("given", "normalized"),
    [
        ("  Ada@Example.COM ", "ada@example.com"),
        ("ada+newsletter@example.com", "ada@example.com"),
        ("a.d.a+x@gmail.com", "ada@gmail.com"),
        ("a.d.a@googlemail.com", "ada@gmail.com"),
        ("first.last@example.com", "first.last@example.com"),  # dots matter outside Gmail
    ],
)
def test_addresses_are_normalized_by_documented_rules(given: str, normalized: str) -> None:
    assert normalize_email(given) == normalized


def test_the_same_person_hashes_the_same_whatever_they_typed() -> None:
    assert email_hash("Ada+shop@Example.com") == email_hash("ada@example.com")
    assert email_hash("ada@example.com") != email_hash("bob@example.com")


@pytest.mark.parametrize("bad", ["", "no-at-sign", "@example.com", "ada@"])
def test_what_is_not_an_address_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        normalize_email(bad)


def test_one_contact_links_every_provider_identity(settings: Settings, clean: None) -> None:
    engine = create_db_engine(settings)
    with engine.begin() as connection:
        first = resolve_contact(
            connection,
            {
                "email": "Ada@example.com",
                "first_name": "Ada",
                "external_ids": {"stripe_customer": "cus_1"},
            },
        )
        again = resolve_contact(
            connection,
            {
                "email": "ada+course@example.com",
                "last_name": "Lovelace",
                "external_ids": {"paypal_payer": "PAYER1"},
            },
        )
        missing = resolve_contact(connection, {"email": None})
    assert first == again and missing is None
    contact = rows(engine, "SELECT email, first_name, last_name FROM contacts")
    assert contact == [{"email": "Ada@example.com", "first_name": "Ada", "last_name": "Lovelace"}]
    links = rows(engine, "SELECT kind, value FROM contact_identities ORDER BY kind")
    assert links == [
        {"kind": "paypal_payer", "value": "PAYER1"},
        {"kind": "stripe_customer", "value": "cus_1"},
    ]
    engine.dispose()
