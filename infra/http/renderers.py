"""Response renderers (imported by views while they load: import no views here)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from rest_framework import renderers


class JSONRenderer(renderers.JSONRenderer):
    """orjson: the same JSON as DRF's renderer for plain data (str subclasses such as
    error details included), several times faster. Anything else goes through `str`."""

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Mapping[str, Any] | None = None
    ) -> bytes:
        if data is None:
            return b""
        return orjson.dumps(data, default=str)
