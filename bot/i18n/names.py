"""Names of configured things as a reader reads them."""

from __future__ import annotations

from bot.i18n import has_text, text
from kpi_engine.languages import Language
from kpi_engine.metrics import Catalogue


def metric_name(catalogue: Catalogue, metric: str, language: Language) -> str:
    """A metric's full name in `language`: the message catalogue's `metric.<key>` text for the
    built-in metrics, else the name configured with a custom metric, else its key."""
    message_id = f"metric.{metric}"
    if has_text(message_id):
        return text(language, message_id)
    found = catalogue.get(metric)
    return found.name(language) if found else metric
