"""``python -m app``: serve the API (app.cli.serve)."""

from __future__ import annotations

from app.cli.serve import main

if __name__ == "__main__":
    main()
