"""Wire format between the grader and the sandboxed worker: data only, never code.

Every message is one frame::

    b"SSLG" | header length (uint32 LE) | payload length (uint64 LE) | header | payload

The header is UTF-8 JSON; the payload is the raw little-endian bytes of every tensor in the
message, one after the other. A value is encoded as a JSON tree in which

- ``None``, ``bool``, ``int``, ``float`` and ``str`` are themselves (non-finite floats as
  ``{"$float": "nan" | "inf" | "-inf"}``),
- ``{"$list": [...]}``, ``{"$tuple": [...]}`` and ``{"$dict": [[key, value], ...]}`` (string
  keys) are containers,
- ``{"$tensor": {"dtype": "float32", "shape": [4, 8], "offset": 0, "nbytes": 128}}`` is a
  tensor whose bytes sit at ``offset`` in the payload (NumPy arrays travel as tensors too,
  marked ``"numpy": true``),
- ``{"$unsupported": {"type": "module.Class", "repr": "..."}}`` stands for any other object.
  The worker describes such an object; it never serialises it.

Nothing is ever pickled, so nothing the worker sends can run code in the grader: decoding
only builds plain ``torch.Tensor`` objects (never a subclass) from an allow-list of dtypes,
and rejects anything malformed (unknown tags, NaN/Infinity JSON literals, shapes that do not
match the byte count, offsets outside the payload, too deep or too large messages) with
``ProtocolError``. This module is copied into the worker's sandbox; it imports only the
standard library and torch.
"""

from __future__ import annotations

import json
import math
import os
import struct
import sys
from typing import Any, BinaryIO

import torch

if sys.byteorder != "little":  # pragma: no cover - every platform the course uses is little-endian
    raise ImportError("the autograder's wire format assumes a little-endian machine")

MAGIC = b"SSLG"
_PREFIX = struct.Struct("<4sIQ")  # magic, header length, payload length

#: Tensor dtypes that may cross the boundary (name on the wire -> dtype).
DTYPES: dict[str, torch.dtype] = {
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float32": torch.float32,
    "float64": torch.float64,
    "uint8": torch.uint8,
    "int8": torch.int8,
    "int16": torch.int16,
    "int32": torch.int32,
    "int64": torch.int64,
    "bool": torch.bool,
}
_DTYPE_NAMES = {dtype: name for name, dtype in DTYPES.items()}

MAX_DEPTH = 24  # nesting of containers
MAX_NODES = 200_000  # values in one message
MAX_STRING = 1 << 20  # characters in one string
MAX_DIMS = 8  # dimensions of one tensor
MAX_DIM_SIZE = 2**31 - 1  # size of one dimension
MAX_ELEMENTS = 2**31 - 1  # elements of one tensor (its bytes must be in the frame too)
MAX_INT_DIGITS = 40  # digits of one integer


class ProtocolError(ValueError):
    """A frame or a value that does not follow the wire format (or exceeds its caps)."""


# ======================================================================================
# Encoding (both sides; on the worker side the values may be the student's objects)
# ======================================================================================
class _Encoder:
    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.size = 0
        self.nodes = 0

    def tensor(self, value: torch.Tensor, numpy: bool = False) -> dict:
        # Plain tensor view of whatever subclass came in: no __torch_function__ override and
        # no Python-level method of the subclass runs.
        with torch._C.DisableTorchFunctionSubclass():
            base = torch.Tensor.detach(value)
            if base.is_complex() or base.dtype not in _DTYPE_NAMES or base.layout != torch.strided:
                return {"$unsupported": {"type": f"tensor of dtype {base.dtype} ({base.layout})", "repr": ""}}
            base = torch.Tensor.contiguous(torch.Tensor.cpu(base))
            shape = [int(s) for s in base.shape]
            flat = base.reshape(-1)
            data = flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b""
        entry = {"dtype": _DTYPE_NAMES[base.dtype], "shape": shape, "offset": self.size, "nbytes": len(data)}
        if numpy:
            entry["numpy"] = True
        self.chunks.append(data)
        self.size += len(data)
        return {"$tensor": entry}

    def value(self, value: Any, depth: int = 0) -> Any:
        self.nodes += 1
        if depth > MAX_DEPTH or self.nodes > MAX_NODES:
            return {"$unsupported": {"type": "value nested too deeply or too large", "repr": ""}}
        kind = type(value)  # type(), not isinstance: __class__ can be faked, type() cannot
        if value is None or kind is bool or kind is str:
            return value if kind is not str or len(value) <= MAX_STRING else value[:MAX_STRING]
        if kind is int:
            return value if abs(value) < 10**MAX_INT_DIGITS else {"$unsupported": {"type": "int", "repr": "huge"}}
        if kind is float:
            return value if math.isfinite(value) else {"$float": repr(value)}
        if kind is list or kind is tuple:
            return {"$list" if kind is list else "$tuple": [self.value(v, depth + 1) for v in value]}
        if kind is dict:
            if all(type(k) is str for k in value):
                return {"$dict": [[k, self.value(v, depth + 1)] for k, v in value.items()]}
        elif issubclass(kind, torch.Tensor):
            return self.tensor(value)
        else:
            numpy_value = _numpy_value(value)
            if numpy_value is not None:
                return self.tensor(numpy_value[0], numpy=True) if numpy_value[1] else numpy_value[0]
        return {"$unsupported": {"type": _type_name(kind), "repr": _safe_repr(value)}}


def _numpy_value(value: Any) -> tuple[Any, bool] | None:
    """(tensor, True) for a NumPy array, (python scalar, False) for a NumPy scalar, else None."""
    np = sys.modules.get("numpy")
    if np is None:
        return None
    kind = type(value)
    if kind is np.ndarray:
        try:
            return torch.from_numpy(np.ascontiguousarray(value)), True
        except (TypeError, ValueError, RuntimeError):
            return None
    if issubclass(kind, np.generic) and kind.__module__ == "numpy":
        if isinstance(value, np.bool_):
            return bool(value), False
        if isinstance(value, np.integer):
            return int(value), False
        if isinstance(value, np.floating):
            number = float(value)
            return (number if math.isfinite(number) else {"$float": repr(number)}), False
    return None


def _type_name(kind: type) -> str:
    try:
        module = type.__getattribute__(kind, "__module__")
        name = type.__getattribute__(kind, "__qualname__")
        return f"{module}.{name}" if module not in ("builtins", None) else str(name)
    except Exception:  # noqa: BLE001 - a hostile metaclass must not break the description
        return "<unknown type>"


def _safe_repr(value: Any, limit: int = 200) -> str:
    try:
        text = repr(value)
    except BaseException:  # noqa: BLE001 - the student's __repr__ may raise anything
        return "<repr failed>"
    if type(text) is not str:
        return "<repr returned a non-string>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def encode(value: Any) -> tuple[Any, bytes]:
    """Encode `value` as (JSON-able tree, payload bytes)."""
    encoder = _Encoder()
    tree = encoder.value(value)
    return tree, b"".join(encoder.chunks)


# ======================================================================================
# Decoding (strict: the grader decodes what an untrusted worker sent)
# ======================================================================================
def _reject_constant(name: str) -> Any:
    raise ProtocolError(f"JSON constant {name} is not allowed")


def _parse_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ProtocolError("non-finite JSON number")
    return number


def _parse_int(text: str) -> int:
    if len(text) > MAX_INT_DIGITS:
        raise ProtocolError("integer too long")
    return int(text)


def parse_header(data: bytes) -> Any:
    """Parse a frame header: strict JSON, no NaN/Infinity, bounded integers."""
    try:
        text = data.decode("utf-8")
        return json.loads(text, parse_constant=_reject_constant, parse_float=_parse_float, parse_int=_parse_int)
    except ProtocolError:
        raise
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise ProtocolError(f"malformed header: {type(error).__name__}") from None


class _Decoder:
    def __init__(self, payload: memoryview) -> None:
        self.payload = payload
        self.nodes = 0

    def value(self, tree: Any, depth: int = 0) -> Any:
        self.nodes += 1
        if depth > MAX_DEPTH + 1 or self.nodes > MAX_NODES:
            raise ProtocolError("value nested too deeply or too large")
        kind = type(tree)
        if tree is None or kind in (bool, int, float):
            return tree
        if kind is str:
            if len(tree) > MAX_STRING:
                raise ProtocolError("string too long")
            return tree
        if kind is not dict or len(tree) != 1:
            raise ProtocolError(f"unexpected JSON value of type {kind.__name__}")
        ((tag, body),) = tree.items()
        if tag in ("$list", "$tuple"):
            if type(body) is not list:
                raise ProtocolError(f"{tag} needs a JSON array")
            items = [self.value(v, depth + 1) for v in body]
            return items if tag == "$list" else tuple(items)
        if tag == "$dict":
            if type(body) is not list:
                raise ProtocolError("$dict needs a JSON array of pairs")
            result = {}
            for pair in body:
                if type(pair) is not list or len(pair) != 2 or type(pair[0]) is not str:
                    raise ProtocolError("$dict entries must be [string, value] pairs")
                result[pair[0]] = self.value(pair[1], depth + 1)
            return result
        if tag == "$float":
            if body not in ("nan", "inf", "-inf"):
                raise ProtocolError("bad $float")
            return float(body)
        if tag == "$tensor":
            return self.tensor(body)
        if tag == "$unsupported":
            if type(body) is not dict:
                raise ProtocolError("bad $unsupported")
            return Unsupported(str(body.get("type", "?"))[:200], str(body.get("repr", ""))[:200])
        raise ProtocolError(f"unknown tag {tag[:40]!r}")

    def tensor(self, body: Any) -> torch.Tensor:
        if type(body) is not dict:
            raise ProtocolError("bad $tensor")
        dtype = DTYPES.get(body.get("dtype")) if type(body.get("dtype")) is str else None
        shape, offset, nbytes = body.get("shape"), body.get("offset"), body.get("nbytes")
        if dtype is None:
            raise ProtocolError(f"tensor dtype {str(body.get('dtype'))[:40]!r} is not allowed")
        if (
            type(shape) is not list
            or len(shape) > MAX_DIMS
            or any(type(s) is not int or not 0 <= s <= MAX_DIM_SIZE for s in shape)
        ):
            raise ProtocolError("bad tensor shape")
        if type(offset) is not int or type(nbytes) is not int or offset < 0 or nbytes < 0:
            raise ProtocolError("bad tensor offset")
        numel = math.prod(shape)
        if numel > MAX_ELEMENTS:
            raise ProtocolError("tensor too large")
        itemsize = torch.empty((), dtype=dtype).element_size()
        if numel * itemsize != nbytes or offset + nbytes > len(self.payload):
            raise ProtocolError("tensor shape does not match its bytes")
        if numel == 0:
            return torch.empty(shape, dtype=dtype)
        data = bytearray(self.payload[offset : offset + nbytes])  # a private, writable copy
        tensor = torch.frombuffer(data, dtype=dtype).reshape(shape)
        if body.get("numpy") is True:
            return NumpyTensor(tensor)
        return tensor


class Unsupported:
    """Stands for an object the worker could not send (described by type and short repr)."""

    def __init__(self, type_name: str, text: str) -> None:
        self.type_name = type_name
        self.text = text

    def __repr__(self) -> str:
        return f"<{self.type_name} object{': ' + self.text if self.text else ''}>"


class NumpyTensor:
    """A NumPy array that came back from the worker, held as a plain tensor in `.tensor`."""

    def __init__(self, tensor: torch.Tensor) -> None:
        self.tensor = tensor

    def __repr__(self) -> str:
        return f"<ndarray of shape {tuple(self.tensor.shape)}, dtype {self.tensor.dtype}>"


def decode(tree: Any, payload: bytes | memoryview) -> Any:
    """Decode a value produced by `encode` (strictly; raises ProtocolError)."""
    return _Decoder(memoryview(payload)).value(tree)


# ======================================================================================
# Framing
# ======================================================================================
def pack_frame(header: dict, payload: bytes | list[bytes] = b"") -> bytes:
    data = json.dumps(header, separators=(",", ":"), allow_nan=False).encode("utf-8")
    chunks = payload if isinstance(payload, list) else [payload]
    size = sum(len(c) for c in chunks)
    return b"".join([_PREFIX.pack(MAGIC, len(data), size), data, *chunks])


def pack_message(header: dict, value: Any) -> bytes:
    """A frame whose header is `header` plus the encoded `value` under "value"."""
    encoder = _Encoder()
    tree = encoder.value(value)
    return pack_frame({**header, "value": tree}, encoder.chunks)


def write_frame(fd: int, frame: bytes) -> None:
    view = memoryview(frame)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def read_exact(stream: BinaryIO | int, size: int) -> bytes:
    """Read exactly `size` bytes from a file descriptor (blocking); EOFError on a short read."""
    chunks, remaining = [], size
    while remaining:
        chunk = os.read(stream, min(remaining, 1 << 20))
        if not chunk:
            raise EOFError("stream closed")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def read_frame_blocking(fd: int, max_header: int, max_payload: int) -> tuple[Any, bytes]:
    """Read one frame from a blocking descriptor (the worker reads its requests this way)."""
    magic, header_len, payload_len = _PREFIX.unpack(read_exact(fd, _PREFIX.size))
    if magic != MAGIC or header_len > max_header or payload_len > max_payload:
        raise ProtocolError("bad frame prefix")
    header = parse_header(read_exact(fd, header_len))
    return header, read_exact(fd, payload_len)


class FrameReader:
    """Incremental frame parser for a non-blocking descriptor, with size caps.

    Feed it bytes as they arrive (`feed`); `frames` holds complete (header, payload) pairs.
    Raises ProtocolError as soon as the stream is malformed or over a cap.
    """

    def __init__(self, max_header: int, max_payload: int) -> None:
        self.max_header = max_header
        self.max_payload = max_payload
        self.buffer = bytearray()
        self.frames: list[tuple[Any, bytes]] = []
        self._need: tuple[int, int] | None = None

    def feed(self, data: bytes) -> None:
        self.buffer += data
        while True:
            if self._need is None:
                if len(self.buffer) < _PREFIX.size:
                    return
                magic, header_len, payload_len = _PREFIX.unpack_from(self.buffer)
                if magic != MAGIC:
                    raise ProtocolError(
                        "bad frame magic (something other than the grader's harness wrote to its channel)"
                    )
                if header_len > self.max_header or payload_len > self.max_payload:
                    raise ProtocolError(f"frame too large ({header_len} + {payload_len} bytes)")
                self._need = (header_len, payload_len)
            header_len, payload_len = self._need
            total = _PREFIX.size + header_len + payload_len
            if len(self.buffer) < total:
                return
            header = parse_header(bytes(self.buffer[_PREFIX.size : _PREFIX.size + header_len]))
            payload = bytes(self.buffer[_PREFIX.size + header_len : total])
            del self.buffer[:total]
            self._need = None
            self.frames.append((header, payload))
