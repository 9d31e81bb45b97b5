"""What an event is found by: a keyed hash of the normalized e-mail and the business ids."""

from __future__ import annotations

from pathlib import Path

from pipeline.ops.handles import email_handle, handle_key, handles_of
from pipeline.settings import Settings

KEY = b"k" * 32


def test_the_e_mail_handle_ignores_case_tags_and_gmail_dots_and_depends_on_the_key() -> None:
    assert email_handle(KEY, "Jane.Doe+bio@gmail.com") == email_handle(KEY, "janedoe@gmail.com")
    assert email_handle(KEY, "jane@example.com") != email_handle(b"other", "jane@example.com")
    assert "jane" not in email_handle(KEY, "jane@example.com")


def test_a_purchase_is_found_by_its_buyer_session_payment_customer_and_charge() -> None:
    document = {
        "type": "purchase.refunded",
        "key": "stripe:ch_123:refunded",
        "contact": {"email": "jane@example.com", "external_ids": {"stripe_customer": "cus_9"}},
        "purchase": {"id": "cs_1", "payment_id": "pi_2", "amount": 100, "currency": "usd"},
    }
    assert handles_of(document, KEY) == [
        email_handle(KEY, "jane@example.com"),
        "id:cus_9",
        "id:cs_1",
        "id:pi_2",
        "id:ch_123",
    ]


def test_without_a_configured_key_one_is_made_once_per_data_directory(tmp_path: Path) -> None:
    first = handle_key(Settings(data_dir=tmp_path))
    assert first == handle_key(Settings(data_dir=tmp_path)) and len(first) == 64
    assert (tmp_path / "hash.key").stat().st_mode & 0o777 == 0o600
    assert handle_key(Settings(data_dir=tmp_path, hash_key="configured")) == b"configured"
