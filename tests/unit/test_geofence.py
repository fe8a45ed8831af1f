"""Geofence answers against an independent check (plain comparisons on boxes) at random points: inside, outside,
on the edge, and across the antimeridian in both of its spellings."""

from __future__ import annotations

import random

import msgspec
import pytest

from app.alerts.geofence import Geofence, GeoMultiPolygon, GeoPolygon, InvalidGeometry

Box = tuple[float, float, float, float]  # west, south, east, north


def polygon(*boxes: Box) -> GeoPolygon | GeoMultiPolygon:
    rings = [[[[w, s], [e, s], [e, n], [w, n], [w, s]]] for w, s, e, n in boxes]
    return GeoPolygon(rings[0]) if len(rings) == 1 else GeoMultiPolygon(rings)


def in_boxes(latitude: float, longitude: float, boxes: list[Box]) -> bool:
    """The independent answer: a point is in an axis-aligned box when each coordinate is within its bounds."""
    for lon in (longitude, longitude + 360.0):
        if any(w <= lon <= e and s <= latitude <= n for w, s, e, n in boxes):
            return True
    return False


def sample_points(rng: random.Random, boxes: list[Box], count: int) -> list[tuple[float, float]]:
    """Uniform points, points on every edge and corner, and points just either side of each edge."""
    points = [(rng.uniform(-90, 90), rng.uniform(-180, 180)) for _ in range(count)]
    for w, s, e, n in boxes:
        for _ in range(count // 10):
            lat, lon = rng.uniform(s, n), rng.uniform(w, e)
            points += [(lat, w), (lat, e), (s, lon), (n, lon), (lat, lon)]  # edges, and inside
            points += [(lat, w - 1e-6), (lat, e + 1e-6), (s - 1e-6, lon), (n + 1e-6, lon)]  # just outside
        points += [(s, w), (s, e), (n, w), (n, e)]
    # as readings come: longitudes within [-180, 180]
    return [
        (lat, (lon + 180.0) % 360.0 - 180.0 if abs(lon) > 180.0 else lon) for lat, lon in points if -90 <= lat <= 90
    ]


@pytest.mark.parametrize(
    "boxes",
    [
        [(-122.31, 37.09, -122.29, 37.11)],  # a site
        [(10.0, -5.0, 20.0, 5.0), (30.0, 40.0, 35.0, 45.0)],  # two areas, a MultiPolygon
        [(170.0, -10.0, 180.0, 10.0), (-180.0, -10.0, -170.0, 10.0)],  # across the antimeridian, cut (RFC 7946)
        [(170.0, -10.0, 190.0, 10.0)],  # across the antimeridian, drawn past 180
    ],
)
def test_geofence_agrees_with_an_independent_check(boxes: list[Box]) -> None:
    fence, rng = Geofence(polygon(*boxes)), random.Random(7)
    points = sample_points(rng, boxes, 2000)
    disagreements = [(lat, lon) for lat, lon in points if fence.covers(lat, lon) != in_boxes(lat, lon, boxes)]
    assert disagreements == []
    assert sum(fence.covers(lat, lon) for lat, lon in points) > len(points) // 10  # the test saw both answers


def test_a_triangle_with_a_hole() -> None:
    outer = [[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [0.0, 0.0]]
    hole = [[1.0, 1.0], [2.0, 1.0], [2.0, 2.0], [1.0, 2.0], [1.0, 1.0]]
    fence = Geofence(GeoPolygon([outer, hole]))
    rng = random.Random(3)
    for _ in range(5000):
        lat, lon = rng.uniform(-1, 11), rng.uniform(-1, 11)
        expected = lon >= 0 and lat >= 0 and lon + lat <= 10 and not (1 < lon < 2 and 1 < lat < 2)
        assert fence.covers(lat, lon) == expected, (lat, lon)


def test_altitudes_are_ignored_even_when_only_some_positions_have_one() -> None:
    # Mixed 2- and 3-element positions once reached shapely as they were, and its ValueError became a 500.
    square = [[0.0, 0.0], [1.0, 0.0, 12.5], [1.0, 1.0], [0.0, 1.0, 3.0], [0.0, 0.0]]
    for geometry in (GeoPolygon([square]), GeoMultiPolygon([[square]])):
        fence = Geofence(geometry)
        assert fence.covers(0.5, 0.5) and not fence.covers(1.5, 0.5)


@pytest.mark.parametrize(
    ("coordinates", "words"),
    [
        ([[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]], "not a valid polygon"),  # a bow tie
        ([[[0, 0], [1, 0], [1, 1], [0, 1]]], "closed"),
        ([[[0, 0], [1, 0], [2, 0], [0, 0]]], "valid"),  # no area
        ([[[0, 95], [1, 95], [1, 96], [0, 95]]], "latitudes"),
    ],
)
def test_invalid_geometry_says_why(coordinates: list[list[list[float]]], words: str) -> None:
    with pytest.raises(InvalidGeometry, match=words):
        Geofence(msgspec.convert({"type": "Polygon", "coordinates": coordinates}, GeoPolygon))
