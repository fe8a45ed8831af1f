"""Robot-fleet telemetry service: Litestar + msgspec + asyncpg on TimescaleDB."""

__version__ = "0.1.0"
