"""What every provider's options schema shares: a key the provider does not know is refused."""

from __future__ import annotations

from marshmallow import RAISE, Schema


class StrictOptions(Schema):
    """The base of a provider's `options_schema`: a misspelt key stops the config, naming it."""

    class Meta:
        unknown = RAISE
