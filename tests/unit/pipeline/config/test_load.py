"""The config file: validated, interpolated, merged from a directory, errors naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config.load import load_config
from pipeline.errors import ConfigError
from pipeline.logging import redact
from tests.support.fixtures import FIXTURES

BASE = """
[sources.stripe]
provider = "stripe"
signing_secrets = ["${SECRET}"]
api_key = "sk_test_x"

[destinations.courses]
provider = "thinkific"
api_key = "k"
subdomain = "s"
rate_limit = "2/s"

[[flows]]
on = "purchase.completed"
do = ["courses.enroll"]
"""


def write(tmp_path: Path, text: str, name: str = "stackwire.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_valid_file_loads_with_variables_read_from_the_environment(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, BASE), {"SECRET": "whsec_1"})
    assert config.sources["stripe"].signing_secrets == ("whsec_1",)
    assert config.destinations["courses"].rate_limit == 2.0
    assert config.destinations["courses"].api_base == "https://api.thinkific.com"
    assert [a.name for a in config.actions_for("purchase.completed", "stripe")] == [
        "courses.enroll"
    ]
    assert config.lanes["analytics"].attempt_window == 6 * 3600


def test_a_default_is_used_when_the_variable_is_unset(tmp_path: Path) -> None:
    text = BASE.replace("${SECRET}", "${SECRET:-whsec_default}")
    assert load_config(write(tmp_path, text), {}).sources["stripe"].signing_secrets == (
        "whsec_default",
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("${SECRET}", "${NOPE}"),
            "sources.stripe.signing_secrets[0]: environment variable NOPE is not set",
        ),
        (
            ('provider = "thinkific"', 'provider = "thinkiffic"'),
            "destinations.courses.provider: unknown",
        ),
        (('rate_limit = "2/s"', 'rate_limit = "fast"'), "destinations.courses.rate_limit"),
        (('subdomain = "s"', 'subdomian = "s"'), "destinations.courses.subdomian: Unknown field."),
        (
            ('do = ["courses.enroll"]', 'do = ["courses.fly"]'),
            "flows[0].do[0]: destination 'courses' cannot 'fly'",
        ),
        (
            ('do = ["courses.enroll"]', 'do = ["email.enroll"]'),
            "flows[0].do[0]: no destination named 'email'",
        ),
        (('on = "purchase.completed"', 'on = "purchase.teleported"'), "flows[0].on"),
        (('api_key = "sk_test_x"', 'api_base = "not a url"'), "sources.stripe"),
    ],
)
def test_a_bad_file_names_the_key_at_fault(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(write(tmp_path, BASE.replace(*change)), {"SECRET": "s"})
    assert message in str(raised.value)


def test_invalid_toml_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[sources\n"), {})


def test_a_directory_is_merged_in_name_order(tmp_path: Path) -> None:
    write(tmp_path, BASE, "00-base.toml")
    write(
        tmp_path, '[[flows]]\non = "purchase.refunded"\ndo = ["courses.unenroll"]\n', "10-more.toml"
    )
    config = load_config(tmp_path, {"SECRET": "s"})
    assert [f.on for f in config.flows] == ["purchase.completed", "purchase.refunded"]


def test_a_key_set_in_two_files_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, BASE, "00-base.toml")
    write(tmp_path, '[sources.stripe]\nprovider = "stripe"\n', "10-again.toml")
    with pytest.raises(
        ConfigError, match=r"sources\.stripe\.provider: set again in 10-again\.toml"
    ):
        load_config(tmp_path, {"SECRET": "s"})


def test_the_demo_config_is_valid() -> None:
    from pipeline.settings import DEFAULT_CONFIG

    config = load_config(DEFAULT_CONFIG, {})
    assert set(config.destinations) == {"courses", "email", "analytics"}


def test_every_configured_secret_is_masked_wherever_text_is_stored_or_logged() -> None:
    # Given the test configuration, loaded as a process loads it
    load_config(FIXTURES / "config", {"SANDBOX_PORT": "8100"})
    secrets = {
        "signing secret": "whsec_test_current",
        "URL secret": "paypal-url-secret-3c9d1e",
        "source credential": "paypal-test-secret",
        "API key": "kit_test_api_key",
        "GA4 api_secret": "ga4_test_api_secret",
        "access token": "pat-na1-11111111-2222-3333-4444-555555555555",
        "header credential": "orders-hook-test-key",
        "hook URL path": "/webhook_sink/hooks/orders",
    }
    for what, value in secrets.items():
        # When any text holding it is redacted (dead letters, traces, attempt rows, logs)
        masked = redact(f"failed while sending {value} somewhere")
        # Then the value is gone
        assert value not in masked, what
    # and what is not a secret stays readable
    assert redact("list list0001 at https://api.example.com/v1") == (
        "list list0001 at https://api.example.com/v1"
    )
