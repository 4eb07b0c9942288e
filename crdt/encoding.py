"""lib0's binary primitives (variable-length unsigned integers, length-prefixed bytes and UTF-8
strings), decoded strictly: every read is bounds-checked and raises MalformedUpdate."""

from __future__ import annotations

import re

from crdt.errors import MalformedUpdate

MAX_SAFE_INTEGER = 2**53 - 1  # what a JavaScript peer can represent; lib0 refuses more

_LONG_VAR_UINT = re.compile(rb"[\x80-\xff]{2,8}[\x00-\x7f]")  # 3 to 9 bytes; lib0 writes no more
_VAR_UINT = rb"[\x80-\xff]{0,8}[\x00-\x7f]"
_ID = re.compile(b"(%s)(%s)" % (_VAR_UINT, _VAR_UINT))
# Long varuints decoded already. Shared by the threads that check updates: a dict's get, set and
# clear are atomic, and a value is the same whichever thread decodes it.
_DECODED: dict[bytes, int] = {}
_DECODED_MAX = 4096


def write_var_uint(value: int) -> bytes:
    if value < 0:
        raise ValueError("var uint must be >= 0")
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value > 0x7F:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    out.append(value)
    return bytes(out)


def write_var_bytes(data: bytes) -> bytes:
    return write_var_uint(len(data)) + data


def write_var_string(text: str) -> bytes:
    return write_var_bytes(text.encode())


def _value(raw: bytes) -> int:
    """The value of `raw`, one whole varuint. Long ones (client ids, mostly: an update repeats
    them) are decoded once per `_DECODED_MAX` of them."""
    if len(raw) < 3:
        return raw[0] if len(raw) == 1 else (raw[0] & 0x7F) | raw[1] << 7
    value = _DECODED.get(raw)
    if value is None:
        if len(_DECODED) >= _DECODED_MAX:
            _DECODED.clear()
        value = 0
        for shift, byte in enumerate(raw):
            value |= (byte & 0x7F) << (7 * shift)
        _DECODED[raw] = value
    return value


class Reader:
    """A cursor over bytes. `what` names the thing being decoded, for error messages."""

    __slots__ = ("data", "pos", "what")

    def __init__(self, data: bytes, what: str) -> None:
        self.data = data
        self.pos = 0
        self.what = what

    def fail(self, reason: str) -> MalformedUpdate:
        return MalformedUpdate(f"{self.what}: {reason} at byte {self.pos}")

    @property
    def remaining(self) -> int:
        return len(self.data) - self.pos

    def uint8(self) -> int:
        if self.pos >= len(self.data):
            raise self.fail("unexpected end")
        value = self.data[self.pos]
        self.pos += 1
        return value

    def var_uint(self, maximum: int = MAX_SAFE_INTEGER) -> int:
        data, pos = self.data, self.pos
        if pos >= len(data):
            raise self.fail("unexpected end")
        byte = data[pos]
        if byte < 0x80:
            value, pos = byte, pos + 1
        elif pos + 1 < len(data) and data[pos + 1] < 0x80:
            value, pos = (byte & 0x7F) | data[pos + 1] << 7, pos + 2
        else:
            value, pos = self._long_var_uint(pos)
        self.pos = pos
        if value > maximum:
            raise self.fail(f"integer {value} is larger than {maximum}")
        return value

    def _long_var_uint(self, pos: int) -> tuple[int, int]:
        """A varuint of 3 bytes or more, and the position after it."""
        found = _LONG_VAR_UINT.match(self.data, pos)
        if found is None:  # no last byte among the first nine
            if len(self.data) - pos >= 9:
                raise self.fail("integer is too long")
            raise self.fail("unexpected end in an integer")
        return _value(found.group()), found.end()

    def id(self, max_clock: int) -> tuple[int, int]:
        """A Yjs item id: a client (any safe integer) and a clock no larger than `max_clock`.
        Both found by one regular expression: structs name ids two or three times each."""
        found = _ID.match(self.data, self.pos)
        if found is not None:
            client, clock = _value(found.group(1)), _value(found.group(2))
            if client <= MAX_SAFE_INTEGER and clock <= max_clock:
                self.pos = found.end()
                return client, clock
        return self.var_uint(), self.var_uint(max_clock)  # raises what is wrong, and where

    def count(self, min_bytes_each: int) -> int:
        """A count of entries that take at least `min_bytes_each` bytes each: no more than the
        bytes left can hold."""
        data, pos = self.data, self.pos
        if pos < len(data) and data[pos] < 0x80:
            count = data[pos]
            self.pos = pos + 1
        else:
            count = self.var_uint()
        if count * min_bytes_each > len(data) - self.pos:
            raise self.fail(f"{count} entries announced, {self.remaining} bytes left")
        return count

    def var_int(self) -> int:
        """lib0's signed varint: sign in bit 6 of the first byte, 6 + 7k bits of magnitude."""
        first = self.uint8()
        value = first & 0x3F
        negative = bool(first & 0x40)
        if first & 0x80:
            shift = 6
            while True:
                byte = self.uint8()
                value |= (byte & 0x7F) << shift
                shift += 7
                if byte < 0x80:
                    break
                if shift > 56:
                    raise self.fail("integer is too long")
        if value > MAX_SAFE_INTEGER:
            raise self.fail("integer is out of range")
        return -value if negative else value

    def skip(self, count: int) -> None:
        if count > len(self.data) - self.pos:
            raise self.fail(f"{count} bytes announced, {self.remaining} left")
        self.pos += count

    def var_bytes(self) -> bytes:
        length = self.var_uint()
        start = self.pos
        self.skip(length)
        return self.data[start : self.pos]

    def var_string(self) -> str:
        raw = self.var_bytes()
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self.fail("string is not UTF-8") from exc

    def skip_var_string(self) -> int:
        """Check a string without keeping it; returns its UTF-8 length."""
        length = self.var_uint()
        start = self.pos
        self.skip(length)
        if length:
            try:
                self.data[start : self.pos].decode("utf-8")
            except UnicodeDecodeError as exc:
                raise self.fail("string is not UTF-8") from exc
        return length

    def string_units(self) -> tuple[int, str | None]:
        """Check a string; returns its length in UTF-16 units, which is how Yjs and yrs count a
        string's clocks (an astral character, such as an emoji, takes two; any other one), and
        the string itself if it holds an astral character (else None: not kept)."""
        length = self.var_uint()
        start = self.pos
        self.skip(length)
        raw = self.data[start : self.pos]
        if raw.isascii():
            return length, None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self.fail("string is not UTF-8") from exc
        units = len(text.encode("utf-16-le")) // 2
        return units, (text if units > len(text) else None)

    def end(self) -> None:
        if self.pos != len(self.data):
            raise self.fail(f"{self.remaining} trailing bytes")
