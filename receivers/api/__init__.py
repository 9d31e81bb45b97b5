"""The admin API: JSON under `/api`, bearer tokens with scopes, every answer in the OpenAPI
document (`/api/openapi.json`) generated from the schemas that validate the requests."""

from receivers.api import openapi, views  # noqa: F401  (their routes join `bp`)
from receivers.api.endpoint import bp

__all__ = ["bp"]
