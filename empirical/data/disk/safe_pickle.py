"""Reading the CIFAR python batches without running code from the file.

A pickle can name any importable callable and have it called while loading. The CIFAR
batches only need numpy's array reconstruction, so :func:`load_numpy_pickle` resolves
exactly those globals (under the module names numpy 1 and numpy 2 write) and refuses
every other one with :class:`BadInput` naming the file.
"""

from __future__ import annotations

import codecs
import pickle
from pathlib import Path

import numpy as np

from semirobust.errors import BadInput

_reconstruct = np.array(0).__reduce__()[0]  # numpy's array reconstructor, whatever its module
_frombuffer = np.array(0).__reduce_ex__(5)[0]  # numpy's protocol-5 array reconstructor
_scalar = np.int64(0).__reduce__()[0]  # numpy's scalar reconstructor

ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,  # Python 2 / numpy 1 pickles (CIFAR)
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,  # numpy 2 pickles
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
    ("numpy.core.multiarray", "scalar"): _scalar,
    ("numpy._core.multiarray", "scalar"): _scalar,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): codecs.encode,  # bytes in Python 3 pickles of protocol 2
}


# What a truncated or corrupt pickle raises while loading (BadInput, a ValueError, is ours).
MALFORMED_PICKLE_ERRORS = (
    pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError,
    KeyError, OverflowError,
)


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def __init__(self, file, path: Path) -> None:
        super().__init__(file, encoding="bytes")
        self._path = path
        self._size = path.stat().st_size

    def _check_allocation(self, shape, dtype) -> None:
        """Refuse, before any allocation, an array holding more bytes than the whole file:
        every element of a CIFAR batch comes from the file."""
        if isinstance(dtype, bytes):
            dtype = dtype.decode("latin-1")
        count = int(np.prod(np.asarray(shape, dtype=object))) if np.ndim(shape) else int(shape)
        size = count * np.dtype(dtype).itemsize
        if count < 0 or size > self._size:
            raise BadInput(
                f"{self._path}: an array of shape {tuple(int(v) for v in np.atleast_1d(shape))} ({size} bytes) "
                f"cannot come from a file of {self._size} bytes; the file is corrupt"
            )

    def _ndarray(self, shape, dtype=float, *args, **kwargs) -> np.ndarray:
        self._check_allocation(shape, dtype)
        return np.ndarray(shape, dtype, *args, **kwargs)

    def _reconstruct(self, subtype, shape, dtype) -> np.ndarray:
        self._check_allocation(shape, dtype)
        return _reconstruct(np.ndarray if subtype == self._ndarray else subtype, shape, dtype)

    def find_class(self, module: str, name: str):
        if (module, name) == ("numpy", "ndarray"):
            return self._ndarray
        if name == "_reconstruct" and (module, name) in ALLOWED_GLOBALS:
            return self._reconstruct
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise BadInput(
                f"{self._path}: refusing to load {module}.{name}; a CIFAR batch holds only "
                "numpy arrays, lists and bytes"
            ) from None


def load_numpy_pickle(path: Path) -> object:
    """Unpickle ``path`` (``encoding="bytes"``, as the CIFAR batches need), allowing numpy
    arrays and plain Python values only; :class:`BadInput` if it is missing or malformed."""
    if not path.is_file():
        raise BadInput(f"missing file {path}")
    with path.open("rb") as file:
        try:
            return _NumpyOnlyUnpickler(file, path).load()
        except BadInput:
            raise
        except MALFORMED_PICKLE_ERRORS as error:
            raise BadInput(f"{path} is not a readable pickle ({type(error).__name__}: {error})") from None
