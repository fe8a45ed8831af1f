"""Geofences: a GeoJSON Polygon or MultiPolygon, checked and prepared once with shapely, asked "is this point in it?".

Longitude and latitude are planar here, as in GeoJSON (RFC 7946 §3.1.1: edges are straight in degrees). A point on
the edge counts as inside (``covers``). An area across the antimeridian can be given either way: cut in two at
±180 into a MultiPolygon (RFC 7946 §3.1.9), or as one ring whose longitudes run on past 180 (170 to 190); a point
is also tried 360° east, so both spellings answer alike.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta
from shapely import intersects_xy, prepare
from shapely.geometry import MultiPolygon, Polygon, shape
from shapely.validation import explain_validity

# Per geofence, over all its rings: a site boundary drawn by hand has tens; a coastline trace, thousands. Checking
# and preparing 10,000 takes ~30 ms of the event loop, once per change (300,000 took a second).
MAX_POSITIONS = 10_000

# [longitude, latitude] (an altitude, if given, is ignored). Longitudes may run to 360 for a ring that crosses
# the antimeridian without being cut.
GeoPosition = Annotated[list[Annotated[float, Meta(ge=-360.0, le=360.0)]], Meta(min_length=2, max_length=3)]
Ring = Annotated[list[GeoPosition], Meta(min_length=4, max_length=MAX_POSITIONS)]


class GeoPolygon(msgspec.Struct, tag="Polygon", tag_field="type", forbid_unknown_fields=True):
    """A GeoJSON Polygon: an outer ring, then holes; each ring closed (its last position repeats its first)."""

    coordinates: Annotated[list[Ring], Meta(min_length=1, max_length=100)]


class GeoMultiPolygon(msgspec.Struct, tag="MultiPolygon", tag_field="type", forbid_unknown_fields=True):
    coordinates: Annotated[list[Annotated[list[Ring], Meta(min_length=1, max_length=100)]], Meta(min_length=1)]


Geometry = Annotated[
    GeoPolygon | GeoMultiPolygon,
    Meta(
        description="GeoJSON Polygon or MultiPolygon in [longitude, latitude] degrees, rings closed.",
        examples=[
            {"type": "Polygon", "coordinates": [[[-122.5, 37.7], [-122.3, 37.7], [-122.3, 37.9], [-122.5, 37.7]]]}
        ],
    ),
]
Area = Literal["allowed", "forbidden"]


class InvalidGeometry(ValueError):
    """The geometry is not a valid area; the message says why, in plain words."""


class Geofence:
    """A prepared area: ``covers(lat, lon)`` answers in microseconds however many vertices it has."""

    __slots__ = ("_area", "_bounds", "_wraps")

    def __init__(self, geometry: GeoPolygon | GeoMultiPolygon) -> None:
        area = _build(geometry)
        prepare(area)  # builds its spatial index once: each covers() is then fast
        self._area = area
        self._bounds = area.bounds
        # Only a shape drawn past 180° needs the second try, so others pay for one check.
        self._wraps = area.bounds[2] > 180.0

    def covers(self, latitude: float, longitude: float) -> bool:
        return self._covers_xy(longitude, latitude) or (self._wraps and self._covers_xy(longitude + 360.0, latitude))

    def _covers_xy(self, x: float, y: float) -> bool:
        # A point outside the bounding box is answered by four comparisons (0.1 µs); inside, intersects_xy on the
        # prepared shape (~2 µs, no Point object) is true on the boundary too, as covers is for a point.
        min_x, min_y, max_x, max_y = self._bounds
        return min_x <= x <= max_x and min_y <= y <= max_y and bool(intersects_xy(self._area, x, y))


def count_positions(geometry: GeoPolygon | GeoMultiPolygon) -> int:
    polygons = geometry.coordinates if isinstance(geometry, GeoMultiPolygon) else [geometry.coordinates]
    return sum(len(ring) for polygon in polygons for ring in polygon)


def _build(geometry: GeoPolygon | GeoMultiPolygon) -> Polygon | MultiPolygon:
    multi = isinstance(geometry, GeoMultiPolygon)
    polygons = geometry.coordinates if isinstance(geometry, GeoMultiPolygon) else [geometry.coordinates]
    if (positions := count_positions(geometry)) > MAX_POSITIONS:
        raise InvalidGeometry(f"a geofence holds at most {MAX_POSITIONS} positions over all its rings, not {positions}")
    for polygon in polygons:
        for ring in polygon:
            if ring[0][:2] != ring[-1][:2]:
                raise InvalidGeometry("each ring must be closed: its last position must repeat its first")
            for position in ring:
                if not -90.0 <= position[1] <= 90.0:
                    raise InvalidGeometry("latitudes must be within -90 and 90")
    # Altitudes are dropped: shapely refuses a ring that mixes 2- and 3-element positions (a ValueError, once a 500).
    flat = [[[position[:2] for position in ring] for ring in polygon] for polygon in polygons]
    area = shape(
        {"type": "MultiPolygon", "coordinates": flat} if multi else {"type": "Polygon", "coordinates": flat[0]}
    )
    if not area.is_valid:
        raise InvalidGeometry(f"the area is not a valid polygon: {explain_validity(area)}")
    if area.area == 0:
        raise InvalidGeometry("the area is empty")
    min_lon, _, max_lon, _ = area.bounds
    if min_lon < -180.0 or max_lon - min_lon > 360.0:
        raise InvalidGeometry("longitudes must be within -180 and 180, or run on past 180 for at most 360 degrees")
    if not isinstance(area, Polygon | MultiPolygon):  # pragma: no cover - shape() of these types gives these
        raise InvalidGeometry("expected a Polygon or MultiPolygon")
    return area
