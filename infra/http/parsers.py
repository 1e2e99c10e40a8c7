"""Request parsers (imported by DRF's settings while its views load: import no views here)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, Any

import orjson
from rest_framework import exceptions, parsers
from rest_framework.utils import json


class JSONParser(parsers.JSONParser):
    """orjson: strict JSON (no NaN or Infinity, nothing nested past 1024 levels, numbers
    that fit a double) and valid Unicode (an unpaired UTF-16 surrogate is a 400, so no
    handler ever sees text PostgreSQL cannot store), several times faster than `json`."""

    def parse(
        self, stream: IO[Any] | None, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None
    ) -> Any:
        body = stream.read() if stream is not None else b""
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            return self.parse_invalid(body, exc)

    def parse_invalid(self, body: bytes, exc: orjson.JSONDecodeError) -> Any:
        raise exceptions.ParseError(f"JSON parse error - {exc}") from exc


class ItemsJSONParser(JSONParser):
    """For bodies that list independent items (a batch of pings): text that is well-formed
    JSON but not valid Unicode is parsed anyway (by `json`), so that an unpaired surrogate
    rejects only the item that carries it; validation refuses such text per item."""

    def parse_invalid(self, body: bytes, exc: orjson.JSONDecodeError) -> Any:
        try:
            return json.loads(body, parse_constant=json.strict_constant)
        except ValueError as error:
            raise exceptions.ParseError(f"JSON parse error - {error}") from error
        except RecursionError as error:
            raise exceptions.ParseError("JSON parse error - nested too deeply.") from error
