"""Every provider Stackwire speaks, as data: one explicit tuple of sources, one of destinations.

Adding a provider is adding its package and one line here. The config loader resolves each
configured `provider = "…"` against these tuples once, when the file is read; nothing else looks
a provider up by name.
"""

from __future__ import annotations

from pipeline.providers.activecampaign.destination import DESTINATION as ACTIVECAMPAIGN_DESTINATION
from pipeline.providers.activecampaign.source import SOURCE as ACTIVECAMPAIGN_SOURCE
from pipeline.providers.acuity.source import SOURCE as ACUITY_SOURCE
from pipeline.providers.base import DestinationProvider, SourceProvider
from pipeline.providers.calendly.source import SOURCE as CALENDLY_SOURCE
from pipeline.providers.ga4.destination import DESTINATION as GA4_DESTINATION
from pipeline.providers.generic_hmac.source import SOURCE as GENERIC_HMAC_SOURCE
from pipeline.providers.http.destination import DESTINATION as HTTP_DESTINATION
from pipeline.providers.hubspot.destination import DESTINATION as HUBSPOT_DESTINATION
from pipeline.providers.kajabi.destination import DESTINATION as KAJABI_DESTINATION
from pipeline.providers.kajabi.source import SOURCE as KAJABI_SOURCE
from pipeline.providers.kit.destination import DESTINATION as KIT_DESTINATION
from pipeline.providers.kit.source import LEGACY_SOURCE as KIT_LEGACY_SOURCE
from pipeline.providers.kit.source import SOURCE as KIT_SOURCE
from pipeline.providers.mailchimp.destination import DESTINATION as MAILCHIMP_DESTINATION
from pipeline.providers.mailchimp.source import SOURCE as MAILCHIMP_SOURCE
from pipeline.providers.mixpanel.destination import DESTINATION as MIXPANEL_DESTINATION
from pipeline.providers.paypal.source import SOURCE as PAYPAL_SOURCE
from pipeline.providers.slack.destination import DESTINATION as SLACK_DESTINATION
from pipeline.providers.standard_webhooks.source import SOURCE as STANDARD_WEBHOOKS_SOURCE
from pipeline.providers.stripe.source import SOURCE as STRIPE_SOURCE
from pipeline.providers.teachable.destination import DESTINATION as TEACHABLE_DESTINATION
from pipeline.providers.teachable.source import SOURCE as TEACHABLE_SOURCE
from pipeline.providers.thinkific.destination import DESTINATION as THINKIFIC_DESTINATION
from pipeline.providers.thinkific.source import SOURCE as THINKIFIC_SOURCE

SOURCES: tuple[SourceProvider, ...] = (
    STRIPE_SOURCE,
    PAYPAL_SOURCE,
    THINKIFIC_SOURCE,
    TEACHABLE_SOURCE,
    KAJABI_SOURCE,
    MAILCHIMP_SOURCE,
    KIT_SOURCE,
    KIT_LEGACY_SOURCE,
    ACTIVECAMPAIGN_SOURCE,
    CALENDLY_SOURCE,
    ACUITY_SOURCE,
    STANDARD_WEBHOOKS_SOURCE,
    GENERIC_HMAC_SOURCE,
)
DESTINATIONS: tuple[DestinationProvider, ...] = (
    THINKIFIC_DESTINATION,
    TEACHABLE_DESTINATION,
    KAJABI_DESTINATION,
    MAILCHIMP_DESTINATION,
    KIT_DESTINATION,
    ACTIVECAMPAIGN_DESTINATION,
    HUBSPOT_DESTINATION,
    MIXPANEL_DESTINATION,
    GA4_DESTINATION,
    SLACK_DESTINATION,
    HTTP_DESTINATION,
)
_SOURCES = {provider.name: provider for provider in SOURCES}
_DESTINATIONS = {provider.name: provider for provider in DESTINATIONS}


def source_provider(name: str) -> SourceProvider | None:
    return _SOURCES.get(name)


def destination_provider(name: str) -> DestinationProvider | None:
    return _DESTINATIONS.get(name)
