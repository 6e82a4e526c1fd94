"""Decoder of Label Studio's brush RLE (``value.format == "rle"``, the thi.ng ``rle-pack`` bit stream).

A brush result stores the region as an RGBA image ``[H, W, 4]`` (``original_height`` x
``original_width``), flattened row-major and packed as a stream of bits, most significant bit of
each byte first, with these fields (unsigned, big-endian)::

    32 bits      num       number of decoded values (H * W * 4)
     5 bits      word - 1  bits per value (8 for RGBA bytes)
    4 x 4 bits   size - 1  the four run-length field widths, selected by a 2-bit index
    then, until num values are out, runs of:
     1 bit       repeat    1: one value repeated, 0: literal values
     2 bits      index     which run-length field width to use
     size bits   n - 1     run length n
    repeat: one word (the value, n times) / literal: n words

The pixel is brushed where its alpha (channel 3) is non-zero, as in ``label-studio-converter``.
Malformed input (bytes out of 0..255, a stream that ends early, a wrong length) is a DataError.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from scribbleseg.errors import DataError


class _BitReader:
    """Reads unsigned big-endian fields from a bit string of '0' / '1' characters."""

    def __init__(self, data: bytes) -> None:
        bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8))
        self._bits = (bits + ord("0")).tobytes().decode("ascii")
        self._position = 0

    def read(self, count: int) -> int:
        end = self._position + count
        if end > len(self._bits):
            raise DataError(f"brush RLE ends early (needs {end} bits, has {len(self._bits)})")
        field = self._bits[self._position:end]
        self._position = end
        return int(field, 2)


def _as_bytes(rle: Sequence[int]) -> bytes:
    try:
        return bytes(rle)
    except (TypeError, ValueError) as err:
        raise DataError(f"brush RLE must be a list of bytes (integers 0..255): {err}") from None


def decode_labelstudio_rle(rle: Sequence[int], expected_length: int | None = None) -> np.ndarray:
    """Decode ``rle`` (a list of byte values) -> ``[num]`` values (uint8 for 8-bit words).

    ``expected_length`` (``H * W * 4`` for a brush) is checked before anything is allocated.
    """
    reader = _BitReader(_as_bytes(rle))
    count = reader.read(32)
    if expected_length is not None and count != expected_length:
        raise DataError(f"brush RLE holds {count} values, expected {expected_length} (width x height x 4)")
    word_bits = reader.read(5) + 1
    run_bits = [reader.read(4) + 1 for _ in range(4)]
    dtype = np.uint8 if word_bits <= 8 else np.uint16 if word_bits <= 16 else np.uint32
    out = np.zeros(count, dtype=dtype)
    position = 0
    while position < count:
        repeat = reader.read(1)
        length = reader.read(run_bits[reader.read(2)]) + 1
        end = min(position + length, count)  # a run past the end is cut, as the reference decoder does
        if repeat:
            out[position:end] = reader.read(word_bits)
        else:
            values = [reader.read(word_bits) for _ in range(length)]
            out[position:end] = values[: end - position]
        position = end
    return out


def decode_brush_mask(rle: Sequence[int], height: int, width: int) -> np.ndarray:
    """``[H, W]`` bool brushed pixels (alpha > 0) of a Label Studio brush RLE of an ``H`` x ``W`` image."""
    values = decode_labelstudio_rle(rle, expected_length=height * width * 4)
    return values.reshape(height, width, 4)[:, :, 3] > 0
