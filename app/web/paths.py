"""Robot ids with '/' in URL paths: a request names one as a single segment, with each '/' sent as %2F.

ASGI servers decode the path before routing, so %2F would split the segment. ``route_on_raw_path`` makes the
app route on the raw path instead, decoded except for %2F and %25, and ``robot_id_from_path`` decodes those two
in the route's ``robot_id`` parameter. (Keeping %25 too keeps an id holding a literal "%2F" distinct.)
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from litestar.types import Scope

from app.model.errors import BadParameter
from app.model.reading import ROBOT_ID_RULE, normalize_robot_id

_KEPT_ESCAPES = re.compile(r"(%2[fF5])")


def _decode_path(raw: str) -> str:
    return "".join(part.upper() if index % 2 else unquote(part) for index, part in enumerate(_KEPT_ESCAPES.split(raw)))


def route_on_raw_path(scope: Scope) -> None:
    """Called on each HTTP scope before routing."""
    raw_path = scope.get("raw_path")
    if raw_path and b"%" in raw_path:
        scope["path"] = _decode_path(raw_path.split(b"?", 1)[0].decode("latin-1"))


def robot_id_from_path(segment: str) -> str:
    """The robot id a path segment names, once routed on the raw path; BadParameter if no robot could have it."""
    raw = unquote(segment) if "%" in segment else segment
    robot_id = normalize_robot_id(raw)
    if robot_id is None:
        raise BadParameter(ROBOT_ID_RULE)
    return robot_id
