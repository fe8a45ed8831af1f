"""Building the app, in a fresh interpreter as a server's worker builds it: what it costs in memory."""

from __future__ import annotations

import json
import subprocess
import sys

BUILD = """
import json, sys, tracemalloc
from app.platform.settings import settings_from
from app.web.app import create_app
tracemalloc.start()
create_app(settings_from({"database_url": "postgresql://nobody@127.0.0.1:1/none", "auth": "off"}))
print(json.dumps({"peak_mb": tracemalloc.get_traced_memory()[1] / 2**20, "faker": "faker" in sys.modules}))
"""
BUILD_PEAK_MB = 30  # measured 11; a ResponseSpec generating examples with polyfactory made it 69


def test_building_the_app_loads_no_example_factory() -> None:
    """Litestar's ResponseSpec generates examples with polyfactory unless told not to, which imports Faker: the
    API's peak RSS rose by 58 MB at start-up, past the abuse suite's bound. The document's examples are ours."""
    run = subprocess.run([sys.executable, "-c", BUILD], capture_output=True, text=True, check=True)
    built = json.loads(run.stdout.strip().splitlines()[-1])
    assert not built["faker"]
    assert built["peak_mb"] < BUILD_PEAK_MB, built
