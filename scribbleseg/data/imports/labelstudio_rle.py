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


def _as_bits(rle: Sequence[int]) -> str:
    """The stream as a string of '0' / '1' (most significant bit of each byte first)."""
    try:
        data = bytes(rle)
    except (TypeError, ValueError) as err:
        raise DataError(f"brush RLE must be a list of bytes (integers 0..255): {err}") from None
    return (np.unpackbits(np.frombuffer(data, dtype=np.uint8)) + ord("0")).tobytes().decode("ascii")


def _ends_early(needed: int, available: int) -> DataError:
    return DataError(f"brush RLE ends early (needs {needed} bits, has {available})")


def decode_labelstudio_rle(rle: Sequence[int], expected_length: int | None = None) -> np.ndarray:
    """Decode ``rle`` (a list of byte values) -> ``[num]`` values (uint8 for 8-bit words).

    ``expected_length`` (``H * W * 4`` for a brush) is checked before anything is allocated. Runs are
    collected as (value, length) and expanded with one ``np.repeat``; long literal runs are converted
    with one matrix product, so the Python loop is per run, not per value.
    """
    bits = _as_bits(rle)
    available = len(bits)
    header = 32 + 5 + 4 * 4
    if available < header:
        raise _ends_early(header, available)
    count = int(bits[:32], 2)
    if expected_length is not None and count != expected_length:
        raise DataError(f"brush RLE holds {count} values, expected {expected_length} (width x height x 4)")
    word = int(bits[32:37], 2) + 1
    run_bits = [int(bits[37 + 4 * i: 41 + 4 * i], 2) + 1 for i in range(4)]
    weights = np.int64(1) << np.arange(word - 1, -1, -1, dtype=np.int64)
    values: list[int] = []
    lengths: list[int] = []
    blocks: list[tuple[int, np.ndarray]] = []  # (index in values, literal block) for long literal runs
    position, cursor = 0, header
    try:
        while position < count:
            token = int(bits[cursor:cursor + 3], 2)  # repeat flag, then the 2-bit run-width index
            size = run_bits[token & 3]
            length = int(bits[cursor + 3:cursor + 3 + size], 2) + 1
            cursor += 3 + size
            length = min(length, count - position) if token >> 2 else length  # a run past the end is cut
            if token >> 2:
                values.append(int(bits[cursor:cursor + word], 2))
                lengths.append(length)
                cursor += word
            elif length <= 8:
                values.extend(int(bits[cursor + k * word:cursor + (k + 1) * word], 2) for k in range(length))
                lengths.extend([1] * length)
                cursor += length * word
            else:
                block = np.frombuffer(bits[cursor:cursor + length * word].encode("ascii"), dtype=np.uint8)
                blocks.append((len(values), (block - ord("0")).reshape(length, word).astype(np.int64) @ weights))
                values.append(0)
                lengths.append(-length)  # placeholder, filled from `blocks` below
                cursor += length * word
            if cursor > available:
                raise _ends_early(cursor, available)
            position += length
    except ValueError:  # a field cut by the end of the stream (int('', 2) or a short reshape)
        raise _ends_early(cursor + 1, available) from None
    dtype = np.uint8 if word <= 8 else np.uint16 if word <= 16 else np.uint32
    pieces, start = [], 0
    for index, block in blocks:
        pieces.append(np.repeat(np.asarray(values[start:index], dtype=np.int64), lengths[start:index]))
        pieces.append(block)
        start = index + 1
    pieces.append(np.repeat(np.asarray(values[start:], dtype=np.int64), lengths[start:]))
    return np.concatenate(pieces)[:count].astype(dtype)


def decode_brush_mask(rle: Sequence[int], height: int, width: int) -> np.ndarray:
    """``[H, W]`` bool brushed pixels (alpha > 0) of a Label Studio brush RLE of an ``H`` x ``W`` image."""
    values = decode_labelstudio_rle(rle, expected_length=height * width * 4)
    return values.reshape(height, width, 4)[:, :, 3] > 0
