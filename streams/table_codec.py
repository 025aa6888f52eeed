"""The Faust codec of the tables' values, registered under ENTRY_CODEC on import. Kept
apart from common/codec.py, which must not load Faust."""

from __future__ import annotations

from typing import Any

from faust.serializers import codecs

from onestop.common.codec import decode_entry, encode_entry


class EntryCodec(codecs.Codec):
    """Faust codec of table values: the store keeps `Entry` objects, the changelog JSON."""

    def _dumps(self, obj: Any) -> bytes:
        return encode_entry(obj)

    def _loads(self, s: bytes) -> Any:
        return decode_entry(s)


ENTRY_CODEC = "onestop_entry"
codecs.register(ENTRY_CODEC, EntryCodec())
