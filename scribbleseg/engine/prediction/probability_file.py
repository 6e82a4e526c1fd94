"""A ``[K, H, W]`` float16 ``.npy`` probability map written band by band, never whole in memory.

Same file as :func:`scribbleseg.engine.prediction.palette_io.save_probabilities` writes (``numpy.load`` reads it;
``numpy.load(f, mmap_mode="r")`` reads a part without loading it), for images too large to hold their
probabilities in memory (``K * H * W * 2`` bytes: 2.7 GB for 8000 x 8000 with ``K = 21``). The file is
written through :func:`scribbleseg.atomic_files.atomic_output`: the space is reserved up front
(``posix_fallocate``, where the file system supports it, so a full disk fails before any inference),
the rows of each class go to their place with ``os.pwrite`` (page cache, not the process's memory),
and only a complete file replaces ``path``; on any error the temporary file is removed.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch import Tensor

from scribbleseg.atomic_files import atomic_output

__all__ = ["ProbabilityFileSink", "npy_header", "open_probability_file"]

_DTYPE = np.dtype("<f2")
_NO_PREALLOCATION = {errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS}


def npy_header(shape: tuple[int, ...], dtype: np.dtype = _DTYPE) -> bytes:
    """The ``.npy`` (format 1.0) header of a C-order array of ``shape`` and ``dtype``."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": np.lib.format.dtype_to_descr(dtype),
                                                  "fortran_order": False, "shape": tuple(shape)})
    return buffer.getvalue()


def _pwrite_all(fd: int, data: memoryview, offset: int) -> None:
    while data:
        written = os.pwrite(fd, data, offset)
        if written <= 0:
            raise OSError(errno.EIO, "the file system accepted no more bytes")
        data, offset = data[written:], offset + written


class ProbabilityFileSink:
    """Band sink writing rows of ``[K, H, W]`` probabilities as float16 into an open ``.npy`` file ``fd``."""

    def __init__(self, fd: int, num_classes: int, height: int, width: int) -> None:
        self.fd, self.num_classes, self.height, self.width = fd, num_classes, height, width
        header = npy_header((num_classes, height, width))
        self.data_offset = len(header)
        total = self.data_offset + num_classes * height * width * _DTYPE.itemsize
        try:
            os.posix_fallocate(fd, 0, total)
        except AttributeError:  # no posix_fallocate on this platform
            pass
        except OSError as err:
            if err.errno not in _NO_PREALLOCATION:
                raise
        _pwrite_all(fd, memoryview(header), 0)

    def write(self, top: int, probabilities: Tensor, labels: Tensor) -> None:
        if top + probabilities.shape[1] > self.height:
            raise ValueError(f"rows {top}..{top + probabilities.shape[1]} outside the {self.height} rows of the file")
        band = probabilities.detach().to(device="cpu", dtype=torch.float16).numpy()
        for index in range(self.num_classes):
            offset = self.data_offset + (index * self.height + top) * self.width * _DTYPE.itemsize
            _pwrite_all(self.fd, memoryview(np.ascontiguousarray(band[index])).cast("B"), offset)


@contextlib.contextmanager
def open_probability_file(path: str | os.PathLike[str], num_classes: int, height: int,
                          width: int) -> Iterator[ProbabilityFileSink]:
    """``with open_probability_file(p, K, H, W) as sink: stitch(..., sinks={head: [sink]})``; atomic."""
    with atomic_output(Path(path)) as fd:
        yield ProbabilityFileSink(fd, num_classes, height, width)
