"""What a purchase grants: each course and each offer once, in the order the products came."""

from __future__ import annotations

import dataclasses

from pipeline.config.model import Config, Product
from pipeline.providers.shared.products import course_ids, offer_ids
from tests.support.contexts import config_of


def catalog(*products: Product) -> Config:
    return dataclasses.replace(config_of(), products={p.key: p for p in products})


def bought(*products: str) -> dict[str, object]:
    return {"type": "purchase.completed", "purchase": {"items": [{"product": p} for p in products]}}


CONFIG = catalog(
    Product("price_monthly", "Course, monthly", 101, "9001", ()),
    Product("price_annual", "Course, annual", 101, "9001", ()),
    Product("price_bundle", "Bundle", 202, "9002", ()),
    Product("price_ebook", "An e-book", None, None, ("ebook",)),
)


def test_two_products_of_one_course_grant_it_once_keeping_the_products_order() -> None:
    event = bought("price_bundle", "price_monthly", "price_ebook", "price_annual")
    assert course_ids(CONFIG, event) == ["202", "101"]
    assert offer_ids(CONFIG, event) == ["9002", "9001"]
