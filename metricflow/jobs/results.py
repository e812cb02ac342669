"""Stored results: a plain, checked format (JSON structure, raw array bytes, sha256).

Nothing on load executes code (docs/RELIABILITY.md): decoding builds only plain values,
numpy arrays of numeric or string dtypes, and the dataclasses of the registered job kinds'
modules.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import sys
import typing

import numpy as np

from metricflow.errors import MetricflowError
from metricflow.jobs.keys import canonical_json, key_of
from metricflow.jobs.kinds import generation, kinds
from metricflow.jobs.status import one_line

__all__ = ["RESULT_FORMAT", "decode_result", "encode_result"]

# The format of stored results; 1 was a pickle, which is never loaded now (it is recomputed).
RESULT_FORMAT = 2
_MAGIC = b"metricflow-result/%d\n" % RESULT_FORMAT

# ---- stored results ---------------------------------------------------------------------
#
# A stored result is  MAGIC  sha256-hex(body) "\n"  body,  body = header-JSON "\n" array-bytes.
# The header holds the key, the config JSON, the schema version, the result's type name and
# the result as a tree of tagged JSON nodes; arrays point at (offset, nbytes) in array-bytes.
# Decoding builds only plain values, numpy arrays of numeric or string dtypes, and the
# dataclasses of the registered job kinds' modules: nothing is imported or executed.

_ARRAY_KINDS = "biufcSU"  # bool, ints, floats, complex, bytes and str; never object


class _Corrupt(Exception):
    """A stored result that fails a check; the message says which."""


def _type_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _is_record_type(cls) -> bool:
    """A dataclass or a NamedTuple: the structured types a stored result may hold."""
    return isinstance(cls, type) and (
        dataclasses.is_dataclass(cls) or (issubclass(cls, tuple) and hasattr(cls, "_fields"))
    )


def _stored_types() -> dict:
    """Dataclasses and NamedTuples a stored result may hold, by name: the registered configs
    and result types, the types their fields name, and those defined in their modules."""
    return _stored_types_of(generation())


@functools.lru_cache(maxsize=1)
def _stored_types_of(generation: int) -> dict:
    found: dict[str, type] = {}

    def add(cls) -> None:
        if not _is_record_type(cls) or _type_name(cls) in found:
            return
        found[_type_name(cls)] = cls
        for sub in cls.__subclasses__():  # a field typed by a base holds its subclasses (kernel specs)
            add(sub)
        try:
            hints = typing.get_type_hints(cls)
        except Exception:  # noqa: BLE001
            hints = {}
        for hint in hints.values():
            walk(hint)

    def walk(hint) -> None:
        add(hint)
        for arg in typing.get_args(hint):
            walk(arg)

    for config_type, kind in kinds().items():
        add(config_type)
        add(kind.result_type)
        for owner in (config_type, kind.result_type, kind.function):
            module = sys.modules.get(getattr(owner, "__module__", None) or "")
            for value in list(vars(module).values()) if module is not None else ():
                if isinstance(value, type) and value.__module__ == module.__name__:
                    add(value)
    return found


def _storable_name(t: type) -> str:
    """The stored name of a dataclass or NamedTuple type, if a result may hold it."""
    name = _type_name(t)
    if _stored_types().get(name) is not t:
        raise MetricflowError(f"cannot store a {name} in a result: define it in the module of a registered job kind")
    return name


def _encode(value, parts: list, size: list):
    """``value`` as a JSON-ready tree; array bytes are appended to ``parts``."""
    t = type(value)
    if value is None or t in (bool, int, float, str):
        return value
    if t is list:
        return [_encode(v, parts, size) for v in value]
    if t is tuple:
        return {"$": "tuple", "v": [_encode(v, parts, size) for v in value]}
    if isinstance(value, tuple) and hasattr(t, "_fields"):
        return {"$": "namedtuple", "type": _storable_name(t), "v": [_encode(v, parts, size) for v in value]}
    if t is dict:
        return {"$": "dict", "v": [[_encode(k, parts, size), _encode(v, parts, size)] for k, v in value.items()]}
    if t is complex:
        return {"$": "complex", "v": [value.real, value.imag]}
    if t is bytes:
        return {"$": "bytes", "v": value.hex()}
    if t is np.ndarray or isinstance(value, np.generic):
        array = np.asarray(value)
        if array.dtype.kind not in _ARRAY_KINDS or array.dtype.fields is not None:
            raise MetricflowError(f"cannot store an array of dtype {array.dtype} in a result; use numbers or strings")
        data = np.ascontiguousarray(array).tobytes()
        node = {"$": "array" if t is np.ndarray else "scalar", "dtype": array.dtype.str,
                "shape": list(array.shape), "offset": size[0], "nbytes": len(data)}
        parts.append(data)
        size[0] += len(data)
        return node
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"$": "dataclass", "type": _storable_name(t),
                "v": {f.name: _encode(getattr(value, f.name), parts, size) for f in dataclasses.fields(value)}}
    raise MetricflowError(
        f"cannot store a {t.__name__} in a result; results hold numbers, strings, None, lists, tuples, "
        "dicts, numpy arrays and dataclasses"
    )


def _decode(node, data: bytes, types: dict):
    t = type(node)
    if node is None or t in (bool, int, float, str):
        return node
    if t is list:
        return [_decode(v, data, types) for v in node]
    if t is not dict:
        raise _Corrupt(f"unexpected {t.__name__} node")
    tag, v = node.get("$"), node.get("v")
    if tag == "tuple":
        return tuple(_decode(x, data, types) for x in v)
    if tag == "namedtuple":
        cls = types.get(node["type"])
        if cls is None or dataclasses.is_dataclass(cls) or len(v) != len(cls._fields):
            raise _Corrupt(f"a {node['type']} that is not a registered NamedTuple of {len(v)} fields")
        return tuple.__new__(cls, [_decode(x, data, types) for x in v])
    if tag == "dict":
        return {_decode(k, data, types): _decode(x, data, types) for k, x in v}
    if tag == "complex":
        re, im = v
        if type(re) is not float or type(im) is not float:
            raise _Corrupt("a complex number with non-float parts")
        return complex(re, im)
    if tag == "bytes":
        return bytes.fromhex(v)
    if tag in ("array", "scalar"):
        dtype = np.dtype(node["dtype"])
        shape = tuple(int(n) for n in node["shape"])
        offset, nbytes = int(node["offset"]), int(node["nbytes"])
        if dtype.kind not in _ARRAY_KINDS or dtype.fields is not None or min(shape, default=0) < 0:
            raise _Corrupt(f"an array of dtype {dtype} and shape {shape}")
        count = math.prod(shape)
        if count * dtype.itemsize != nbytes or offset < 0 or offset + nbytes > len(data):
            raise _Corrupt("an array whose size does not match its bytes")
        array = np.frombuffer(data, dtype=dtype, count=count, offset=offset).reshape(shape).copy()
        return array if tag == "array" else array[()]
    if tag == "dataclass":
        cls = types.get(node["type"])
        if cls is None or not dataclasses.is_dataclass(cls):
            raise _Corrupt(f"a {node['type']}, which is not a registered result type")
        names = [f.name for f in dataclasses.fields(cls)]
        if sorted(v) != sorted(names):
            raise _Corrupt(f"a {cls.__name__} with fields {sorted(v)}")
        obj = object.__new__(cls)  # no __init__ / __post_init__: the fields as they were stored
        for name in names:
            object.__setattr__(obj, name, _decode(v[name], data, types))
        return obj
    raise _Corrupt(f"unknown node tag {tag!r}")


def encode_result(result, key: str, config_json: str, schema_version: int) -> bytes:
    """The stored bytes of ``result``, the answer for the job ``key`` of ``config_json``.

    Raises MetricflowError if the result holds a type that cannot be stored.
    """
    if key_of(config_json, schema_version) != key:
        raise MetricflowError(f"job {key[:12]} is not the key of the config it is stored with")
    parts: list = []
    tree = _encode(result, parts, [0])
    header = {"key": key, "config": config_json, "schema": int(schema_version),
              "type": _type_name(type(result)), "tree": tree}
    body = json.dumps(header, separators=(",", ":")).encode() + b"\n" + b"".join(parts)
    return _MAGIC + hashlib.sha256(body).hexdigest().encode() + b"\n" + body


def decode_result(blob, key: str, result_type: type | None = None):
    """The result stored in ``blob`` for the job ``key``, after checking it.

    Returns (result, header): header has "config" (canonical JSON) and "schema".
    Raises MetricflowError naming the first check that fails: the format, the sha256 of the
    bytes, the key, the config the key belongs to, the result's type (``result_type`` if
    given) and the config inside the result.
    """
    try:
        return _decode_checked(blob, key, result_type)
    except _Corrupt as err:
        raise MetricflowError(str(err)) from None
    except Exception as err:  # noqa: BLE001  (any malformed piece is a corrupt entry)
        raise MetricflowError(f"malformed ({one_line(err)})") from None


def _decode_checked(blob, key: str, result_type):
    if not isinstance(blob, bytes):
        raise _Corrupt("no stored bytes" if blob is None else f"a stored {type(blob).__name__}, not bytes")
    if not blob.startswith(_MAGIC):
        older = blob.startswith(b"\x80") or blob.startswith(b"metricflow-result/")
        raise _Corrupt("written in an older format" if older else "not a metricflow result")
    digest, _, body = blob[len(_MAGIC):].partition(b"\n")
    if hashlib.sha256(body).hexdigest().encode() != digest:
        raise _Corrupt("its sha256 does not match its bytes")
    text, _, data = body.partition(b"\n")
    header = json.loads(text)
    if header["key"] != key:
        raise _Corrupt(f"it is the result of job {str(header['key'])[:12]}, not of {key[:12]}")
    if key_of(header["config"], header["schema"]) != key:
        raise _Corrupt("its config and schema do not give its key")
    result = _decode(header["tree"], data, _stored_types())
    if _type_name(type(result)) != header["type"]:
        raise _Corrupt(f"it holds a {type(result).__name__}, its header says {header['type']}")
    if result_type is not None and not isinstance(result, result_type):
        raise _Corrupt(f"it holds a {type(result).__name__}, the job kind makes {result_type.__name__}")
    inner = getattr(result, "config", None)
    if dataclasses.is_dataclass(inner) and canonical_json(inner) != header["config"]:
        raise _Corrupt("the result inside answers another config")
    return result, header

