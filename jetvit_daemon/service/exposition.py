"""/metrics content negotiation, through prometheus_client's own encoders: the OpenMetrics text format (with
its `# EOF`) when the scraper asks for it in `Accept` (Prometheus does, by default, since 2.x), the classic text
format otherwise, gzip-compressed when `Accept-Encoding` allows it (a board's metrics page is ~30 KB of text;
a few KB gzipped, which matters on fleets scraped over cellular links)."""

import gzip
from typing import Dict, Optional, Tuple

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder


def render_metrics(registry: CollectorRegistry, accept: Optional[str],
                   accept_encoding: Optional[str]) -> Tuple[bytes, Dict[str, str]]:
    """The exposition body and its headers (Content-Type, and Content-Encoding when compressed)."""
    encoder, content_type = choose_encoder(accept or "")
    body = encoder(registry)
    headers = {"Content-Type": content_type}
    if _accepts_gzip(accept_encoding):
        body = gzip.compress(body, compresslevel=6)
        headers["Content-Encoding"] = "gzip"
    return body, headers


def _accepts_gzip(header: Optional[str]) -> bool:
    for part in (header or "").split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip().lower() == "gzip":
            return params.replace(" ", "") not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False
