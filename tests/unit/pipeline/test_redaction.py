"""What never reaches a log line or a stored text: configured secrets, URL queries and user-info."""

from __future__ import annotations

import logging

from pipeline.logging import JsonFormatter, redact
from pipeline.redaction import MASK, remember_secrets, scrub_urls

URLLIB3 = (
    "HTTPSConnectionPool(host='www.google-analytics.com', port=443): Max retries exceeded with "
    "url: /mp/collect?measurement_id=G-ABC123&api_secret=Zx9-secret (Caused by "
    "NewConnectionError('<urllib3.connection.HTTPSConnection object>: Failed to establish'))"
)


def test_a_query_string_is_dropped_from_a_path_or_a_url() -> None:
    scrubbed = scrub_urls(URLLIB3)
    assert "api_secret" not in scrubbed and "G-ABC123" not in scrubbed
    assert "url: /mp/collect?[redacted] (Caused by NewConnectionError(" in scrubbed
    assert (
        scrub_urls("see https://a.example/x?token=1, then")
        == "see https://a.example/x?[redacted] then"
    )


def test_user_info_is_dropped_from_a_url() -> None:
    assert (
        scrub_urls("GET https://user:p4ss@api.example.com/v1") == "GET https://api.example.com/v1"
    )


def test_a_configured_secret_is_masked_as_written_and_url_encoded() -> None:
    remember_secrets(["ga4/secret+value=1"])
    text = "sent ga4/secret+value=1 and ga4%2Fsecret%2Bvalue%3D1"
    assert redact(text) == f"sent {MASK} and {MASK}"


def test_a_secret_containing_another_is_masked_whole() -> None:
    remember_secrets(["longer-secret-abcdef", "secret-abcdef"])
    assert redact("x longer-secret-abcdef y secret-abcdef") == f"x {MASK} y {MASK}"


def test_short_values_are_not_masked_they_would_blank_out_words() -> None:
    remember_secrets(["abc", ""])
    assert redact("abc is fine") == "abc is fine"


def test_redact_drops_nul_which_no_text_column_can_hold() -> None:
    assert redact("Ada\x00 Lovelace") == "Ada Lovelace"


def test_a_log_line_masks_secrets_in_its_message_and_its_fields() -> None:
    remember_secrets(["hook-secret-123456"])
    record = logging.makeLogRecord(
        {"msg": "POST https://x.example/h/hook-secret-123456?sig=1", "levelno": 30}
    )
    record.url = "https://user:pw@x.example/h/hook-secret-123456"
    line = JsonFormatter("worker").format(record)
    assert "hook-secret-123456" not in line and "sig=1" not in line and "user:pw" not in line
