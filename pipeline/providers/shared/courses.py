"""Enroll and unenroll on a course platform (Thinkific, Teachable, Kajabi), the steps written once.

Every course platform runs the same skeleton: what the purchased products grant (courses, or
Kajabi's offers; nothing granted is skipped before anything else is read), the buyer's e-mail,
then for `enroll` the account found or created and the grants it lacks added, and for
`unenroll` the account found (with none there is nothing to take back) and its grants taken back.
None of these APIs takes an idempotency key, so each platform's steps look before they create; a
platform supplies only those steps and what it calls things.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, ClassVar, Generic, TypeVar, cast

from pipeline.config.model import Config
from pipeline.providers.base import DeliveryRef, DestinationContext, DestinationProvider
from pipeline.providers.shared.contacts import require_email
from pipeline.providers.shared.products import course_ids

ApiT = TypeVar("ApiT")
GrantT = TypeVar("GrantT")
EnrolleeT = TypeVar("EnrolleeT")


class CoursePlatform(DestinationProvider, Generic[ApiT, GrantT, EnrolleeT]):
    """A course platform as a destination; a subclass supplies its API's steps below."""

    kind = "courses"
    actions = {"enroll": "enrollments", "unenroll": "enrollments"}
    revokes = {"unenroll": "enroll"}
    looks_before_create = True
    # find the account, create it, enroll (or read what it holds)
    calls_per_action = 3
    nothing_granted: ClassVar[str] = "no_course_for_these_products"
    no_account: ClassVar[str] = "no_such_user"

    def perform(
        self, ctx: DestinationContext, delivery: DeliveryRef, event: dict[str, Any]
    ) -> dict[str, Any]:
        grants = self.grants(ctx.config, event)
        if not grants:
            return {"skipped": self.nothing_granted}
        api = self.connect(ctx)
        email = require_email(event)
        if delivery.verb == "unenroll":
            account = self.account(api, email)
            if account is None:
                return {"skipped": self.no_account}
            return self.unenroll(api, ctx, account, grants)
        return self.enroll(api, ctx, self.enrollee(api, email, event), grants)

    def grants(self, config: Config, event: dict[str, Any]) -> list[GrantT]:
        """What the event's products grant here: their `[products] course_id`s as text. A
        platform granting something else (Kajabi's offers), or taking the ids in another form
        (Teachable's numbers), overrides this."""
        return cast("list[GrantT]", course_ids(config, event))

    def connect(self, ctx: DestinationContext) -> ApiT:
        raise NotImplementedError

    def enrollee(self, api: ApiT, email: str, event: dict[str, Any]) -> EnrolleeT:
        """The account to enroll, found or created (with what it already holds, if read)."""
        raise NotImplementedError

    def enroll(
        self, api: ApiT, ctx: DestinationContext, enrollee: EnrolleeT, grants: list[GrantT]
    ) -> dict[str, Any]:
        raise NotImplementedError

    def account(self, api: ApiT, email: str) -> dict[str, Any] | None:
        """The account to unenroll, if the platform has one for this address."""
        raise NotImplementedError

    def unenroll(
        self, api: ApiT, ctx: DestinationContext, account: dict[str, Any], grants: list[GrantT]
    ) -> dict[str, Any]:
        raise NotImplementedError


def held_and_missing(
    grants: Sequence[GrantT], held: Iterable[GrantT]
) -> tuple[list[GrantT], list[GrantT]]:
    """The grants an account already holds and the ones it lacks, each in the products' order."""
    holding = set(held)
    return [g for g in grants if g in holding], [g for g in grants if g not in holding]
