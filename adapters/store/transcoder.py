"""An orjson transcoder for stored events (the hot path of every write and every replay).

orjson encodes UUIDs and datetimes natively but cannot decode them back, so values of those types are tagged on the way
in with the same `{"_type_": name, "_data_": value}` envelope as the library's JSONTranscoder uses, and restored on the
way out. Events written by either transcoder can be read by the other. Hand-written because the library offers only
the stdlib `json` transcoder, which is several times slower on our event shapes (see bench figures in the README).
"""

from __future__ import annotations

from datetime import date
from typing import Any

import orjson
from eventsourcing.persistence import Transcoder, Transcoding, TranscodingNotRegisteredError

_SCALARS = (str, int, float, bool, type(None))


class DateAsISO(Transcoding):
    """Calendar dates (not datetimes) as ISO strings."""

    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


class OrjsonTranscoder(Transcoder):
    """Transcoder with the JSONTranscoder's registry of transcodings, serialising with orjson."""

    def __init__(self) -> None:
        self.types: dict[type, Transcoding] = {}
        self.names: dict[str, Transcoding] = {}

    def register(self, transcoding: Transcoding) -> None:
        """Register a transcoding for a non-JSON type."""
        self.types[transcoding.type] = transcoding
        self.names[transcoding.name] = transcoding

    def encode(self, obj: Any) -> bytes:
        """Encode an event's state dict as bytes."""
        return orjson.dumps(self._tag(obj))

    def decode(self, data: bytes) -> Any:
        """Decode bytes written by `encode` (or by the library's JSONTranscoder)."""
        return self._untag(orjson.loads(data))

    def _tag(self, o: Any) -> Any:
        if isinstance(o, _SCALARS):
            return o
        if isinstance(o, dict):
            return {k: self._tag(v) for k, v in o.items()}
        if isinstance(o, list | tuple):
            return [self._tag(v) for v in o]
        transcoding = self.types.get(type(o))
        if transcoding is None:
            raise TranscodingNotRegisteredError(
                f"Object of type {type(o)} is not serializable: register a transcoding for it"
            )
        return {"_type_": transcoding.name, "_data_": self._tag(transcoding.encode(o))}

    def _untag(self, o: Any) -> Any:
        if isinstance(o, dict):
            if len(o) == 2 and "_type_" in o and "_data_" in o:
                try:
                    transcoding = self.names[o["_type_"]]
                except KeyError:
                    raise TranscodingNotRegisteredError(
                        f"Data serialised with name {o['_type_']!r} is not deserialisable: register its transcoding"
                    ) from None
                return transcoding.decode(self._untag(o["_data_"]))
            return {k: self._untag(v) for k, v in o.items()}
        if isinstance(o, list):
            return [self._untag(v) for v in o]
        return o
