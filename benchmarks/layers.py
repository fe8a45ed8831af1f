"""``python -m benchmarks.layers PROFILE [US_PER_POST]``: a py-spy raw profile (``--format raw``) by layer.

Each sample goes to the layer of its innermost frame that has one ("self"); a layer's "inclusive" share counts
the samples with any of its frames on the stack. With the API's CPU per POST measured in the same run, each
share is also given in microseconds.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

# First match wins: (layer, patterns of a frame's file path).
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("HTTP server: uvicorn's protocol, httptools, socket writes", ("uvicorn/", "httptools/")),
    ("HTTP server: our guards (app/cli/serve_limits.py)", ("app/cli/serve_limits.py",)),
    (
        "access line, request id, metrics, security headers",
        (
            "app/web/access_log.py",
            "app/platform/logs.py",
            "app/web/app.py",
            "prometheus_client/",
            "app/platform/metrics.py",
        ),
    ),
    ("lean ingest route, body", ("app/web/ingest_endpoint.py",)),
    (
        "authentication, rate limits, requests in flight",
        ("app/web/guard.py", "app/web/admission.py", "app/auth/", "app/platform/limits.py"),
    ),
    ("decoding and validation", ("app/telemetry/decoding.py", "app/model/reading.py")),
    (
        "group commit: queue, batch, writer check",
        ("app/telemetry/buffer.py", "app/telemetry/batch.py", "app/telemetry/commits.py", "app/telemetry/writers.py"),
    ),
    ("database: asyncpg, the flush's statements", ("asyncpg/", "app/platform/sql.py", "app/telemetry/store.py")),
    (
        "background: latest state, relay, alert rounds, samplers",
        (
            "app/telemetry/latest.py",
            "app/telemetry/relay.py",
            "app/telemetry/fanout.py",
            "app/alerts/",
            "app/platform/periodic.py",
            "app.web.sampling.py",
        ),
    ),
    ("event loop: uvloop's C code (epoll, socket reads, callbacks)", ("asyncio/", "uvloop")),
)
OTHER = "other (logging, contextlib, the rest)"
_FILE = re.compile(r"\((.*?)(?::\d+)?\)$")


def layer_of(frame: str) -> str | None:
    match = _FILE.search(frame)
    path = match.group(1) if match else frame
    for layer, patterns in LAYERS:
        if any(path.startswith(pattern) or f"/{pattern}" in path for pattern in patterns):
            return layer
    return None


def attribute(lines: list[str]) -> tuple[int, Counter[str], Counter[str]]:
    total, own, inclusive = 0, Counter[str](), Counter[str]()
    for line in lines:
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        layers = [layer_of(frame) for frame in stack.split(";")]
        known = [layer for layer in layers if layer is not None]
        own[known[-1] if known else OTHER] += n
        for layer in set(known):
            inclusive[layer] += n
    return total, own, inclusive


def main() -> None:
    lines = Path(sys.argv[1]).read_text().splitlines()
    us_per_post = float(sys.argv[2]) if len(sys.argv) > 2 else None
    total, own, inclusive = attribute(lines)
    print(f"{total} samples\n\n| layer | self | inclusive |" + (" µs a POST (self) |" if us_per_post else ""))
    print("|---|---:|---:|" + ("---:|" if us_per_post else ""))
    for layer, n in own.most_common():
        share = n / total
        row = f"| {layer} | {100 * share:.1f} % | {100 * inclusive.get(layer, n) / total:.1f} % |"
        print(row + (f" {share * us_per_post:.0f} |" if us_per_post else ""))


if __name__ == "__main__":
    main()
