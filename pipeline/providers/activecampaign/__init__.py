"""ActiveCampaign (API v3): a webhook source and a destination (subscribe, tag, unsubscribe).

The registry reads `SOURCE` and `DESTINATION` from here.
"""

from pipeline.providers.activecampaign.destination import DESTINATION
from pipeline.providers.activecampaign.source import SOURCE

__all__ = ["DESTINATION", "SOURCE"]
