"""The snapshot in which another feature's query reads the rollups together with the readings: no reading counted
twice or missed."""

from __future__ import annotations

from app.rollups.store import snapshot

__all__ = ["snapshot"]
