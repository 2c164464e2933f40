"""Reading a Prometheus text exposition in tests: its samples, parsed by prometheus_client's own parser."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample


def samples(exposition: bytes) -> list[Sample]:
    """Every sample of the exposition (names as exposed, e.g. with `_total`)."""
    return [s for family in text_string_to_metric_families(exposition.decode()) for s in family.samples]


def with_an_empty_label(exposition: bytes) -> list[Sample]:
    """The samples that carry a label without a value (`reason=""`): a series nobody can select or explain."""
    return [s for s in samples(exposition) if "" in s.labels.values()]
