"""Writing pickles byte for byte as Python 2's cPickle wrote the CIFAR batches.

The CIFAR "python version" files are protocol-2 pickles from Python 2: keys and strings
are Python 2 ``str`` (read back as ``bytes`` with ``encoding="bytes"``), and the image
array refers to ``numpy.core.multiarray._reconstruct``. Python 3's own pickler writes
``bytes`` differently (through ``_codecs.encode``) and numpy 2 names another module, so
tests that must exercise the real format write it with :func:`dumps_py2`, which covers
the values those files hold: dicts, lists, ``bytes``, ``int`` and ``uint8`` arrays.
"""

from __future__ import annotations

import struct

import numpy as np

from semirobust.errors import BadInput

PROTO_2 = b"\x80\x02"
MARK, STOP, TUPLE, TUPLE1, TUPLE3 = b"(", b".", b"t", b"\x85", b"\x87"
EMPTY_DICT, SETITEMS, EMPTY_LIST, APPENDS = b"}", b"u", b"]", b"e"
REDUCE, BUILD, NONE, NEWFALSE = b"R", b"b", b"N", b"\x89"
RECONSTRUCT = b"cnumpy.core.multiarray\n_reconstruct\n"
NDARRAY, DTYPE = b"cnumpy\nndarray\n", b"cnumpy\ndtype\n"


def dumps_py2(value: object) -> bytes:
    """``value`` pickled as Python 2.7's ``cPickle.dumps(value, 2)`` would (without memo)."""
    return PROTO_2 + _encode(value) + STOP


def _encode(value: object) -> bytes:
    if isinstance(value, dict):
        items = b"".join(_encode(k) + _encode(v) for k, v in value.items())
        return EMPTY_DICT + (MARK + items + SETITEMS if value else b"")
    if isinstance(value, list):
        items = b"".join(_encode(item) for item in value)
        return EMPTY_LIST + (MARK + items + APPENDS if value else b"")
    if isinstance(value, bytes):
        return _string(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return _int(value)
    if isinstance(value, np.ndarray) and value.dtype == np.uint8:
        return _uint8_array(value)
    raise BadInput(f"dumps_py2: cannot write a {type(value).__name__} (dict, list, bytes, int, uint8 array)")


def _string(data: bytes) -> bytes:
    if len(data) < 256:
        return b"U" + bytes([len(data)]) + data  # SHORT_BINSTRING
    return b"T" + struct.pack("<I", len(data)) + data  # BINSTRING


def _int(value: int) -> bytes:
    if 0 <= value < 256:
        return b"K" + bytes([value])  # BININT1
    if 0 <= value < 65536:
        return b"M" + struct.pack("<H", value)  # BININT2
    return b"J" + struct.pack("<i", value)  # BININT


def _uint8_array(array: np.ndarray) -> bytes:
    """``_reconstruct(ndarray, (0,), 'b')`` then ``__setstate__((1, shape, dtype, False, raw))``."""
    shape = MARK + b"".join(_int(size) for size in array.shape) + TUPLE
    dtype = (
        DTYPE + _string(b"u1") + _int(0) + _int(1) + TUPLE3 + REDUCE
        + MARK + _int(3) + _string(b"|") + NONE + NONE + NONE + _int(-1) + _int(-1) + _int(0)
        + TUPLE + BUILD
    )
    raw = _string(np.ascontiguousarray(array).tobytes())
    empty = RECONSTRUCT + NDARRAY + _int(0) + TUPLE1 + _string(b"b") + TUPLE3 + REDUCE
    return empty + MARK + _int(1) + shape + dtype + NEWFALSE + raw + TUPLE + BUILD
