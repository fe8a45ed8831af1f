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
    ("HTTP server: our guards (app/server.py)", ("app/server.py",)),
    (
        "access line, request id, metrics, security headers",
        ("app/api/access.py", "app/logs.py", "app/main.py", "prometheus_client/", "app/metrics.py"),
    ),
    ("lean ingest route, body", ("app/api/lean_ingest.py",)),
    (
        "authentication, rate limits, requests in flight",
        ("app/api/auth.py", "app/api/admission.py", "app/auth/", "app/limits.py"),
    ),
    ("decoding and validation", ("app/ingest/decoding.py", "app/ingest/reading.py")),
    (
        "group commit: queue, batch, writer check",
        ("app/ingest/buffer.py", "app/ingest/batch.py", "app/ingest/commits.py", "app/ingest/writers.py"),
    ),
    ("database: asyncpg, the flush's statements", ("asyncpg/", "app/db/")),
    (
        "background: latest state, relay, alert rounds, samplers",
        (
            "app/ingest/latest.py",
            "app/ingest/relay.py",
            "app/ingest/fanout.py",
            "app/alerts/",
            "app/periodic.py",
            "app/sampling.py",
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
