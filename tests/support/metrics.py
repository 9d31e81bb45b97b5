"""Reading a scrape as Prometheus would: parsed with prometheus_client's own parser."""

from __future__ import annotations

import requests
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample


def scrape(url: str) -> dict[str, list[Sample]]:
    """{family name: its samples} from `url`/metrics."""
    answer = requests.get(f"{url}/metrics", timeout=30)
    answer.raise_for_status()
    return {f.name: list(f.samples) for f in text_string_to_metric_families(answer.text)}


def total(families: dict[str, list[Sample]], sample: str, **labels: str) -> float:
    """The sum of the samples named `sample` whose labels include `labels`."""
    family = sample.removesuffix("_total").removesuffix("_bucket").removesuffix("_count")
    family = family.removesuffix("_sum")
    return sum(
        s.value
        for s in families.get(family, [])
        if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items())
    )


def series(families: dict[str, list[Sample]]) -> int:
    return sum(len(samples) for samples in families.values())
