"""Arrow record batches -> PostgreSQL's binary COPY format, vectorised.

Why: in CSV form the server scans every byte for quotes, delimiters and line ends and
parses each field's text; in binary form it reads a length and the bytes. For staging
rows (64-character pseudonyms, timestamps kept as text) that is most of the server's
work per row (docs/performance.md, "Ingest (PostgreSQL)").

The format (PostgreSQL manual, ``COPY``, "Binary Format"): an 11-byte signature, an
int32 flags word and an int32 header-extension length; then per row an int16 field count
and, per field, an int32 byte length (-1 for NULL) followed by the value in the type's
binary send form (``text``/``varchar``: its UTF-8 bytes; ``int2``/``int4``/``int8``:
big-endian two's complement); an int16 -1 ends the data.

No Python runs per row. A batch is laid out as runs of bytes that have the same width on
every row (the row header, lengths, integers, constants such as the delivery id, and
string columns whose values all have one length in the batch, e.g. pseudonyms and
timestamps), each built as one numpy structured array, and the variable-length string
columns between the runs; Arrow's ``binary_join_element_wise`` then concatenates each
row's pieces in C++, and the joined data buffer is the COPY stream.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
TRAILER = b"\xff\xff"

TEXT = "text"  # text, varchar(n), char(n): the UTF-8 bytes
INTEGER_BYTES: dict[str, int] = {"int2": 2, "int4": 4, "int8": 8}
KINDS: tuple[str, ...] = (TEXT, *INTEGER_BYTES)

# A batch larger than this in COPY form is encoded in slices (Arrow binary arrays have
# 32-bit offsets; smaller pieces also keep the client's memory bounded).
MAX_ENCODED_BYTES = 256 << 20


class CopyEncodeError(ValueError):
    """A column cannot be sent in binary form; the message names the column."""


@dataclass
class _Run:
    """Bytes with the same width on every row, filled from a template row."""

    template: bytearray = field(default_factory=bytearray)
    formats: dict[str, tuple[str, int]] = field(default_factory=dict)
    values: dict[str, np.ndarray] = field(default_factory=dict)

    def constant(self, data: bytes) -> None:
        self.template.extend(data)

    def per_row(self, fmt: str, width: int, values: np.ndarray) -> None:
        name = f"f{len(self.formats)}"
        self.formats[name] = (fmt, len(self.template))
        self.values[name] = values
        self.template.extend(bytes(width))

    def build(self, n: int) -> np.ndarray:
        """``n`` rows as one contiguous uint8 array of ``n * width`` bytes."""
        width = len(self.template)
        out = np.empty(n * width, np.uint8)
        rows = out.view(f"V{width}") if width else out
        if width:
            rows[:] = np.void(bytes(self.template))
        if self.formats:
            layout = np.dtype(
                {
                    "names": list(self.formats),
                    "formats": [fmt for fmt, _ in self.formats.values()],
                    "offsets": [offset for _, offset in self.formats.values()],
                    "itemsize": width,
                }
            )
            fields = rows.view(layout)
            for name, values in self.values.items():
                fields[name] = values
        return out


def _binary_column(values: np.ndarray, n: int, width: int, valid: pa.Buffer | None = None):
    """A zero-copy Arrow binary array over ``n`` values of ``width`` bytes each."""
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
    return pa.Array.from_buffers(
        pa.binary(), n, [valid, pa.py_buffer(offsets), pa.py_buffer(values)]
    )


def _offsets(array: pa.Array) -> np.ndarray:
    large = pa.types.is_large_string(array.type) or pa.types.is_large_binary(array.type)
    dtype = np.dtype(np.int64 if large else np.int32)
    return np.frombuffer(array.buffers()[1], dtype, len(array) + 1, array.offset * dtype.itemsize)


def _is_text(kind: pa.DataType) -> bool:
    return (
        pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_binary(kind)
        or pa.types.is_large_binary(kind)
    )


def _as_bytes(array: pa.Array, name: str) -> pa.Array:
    """Text as a binary array with 32-bit offsets (a zero-copy view where possible)."""
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if pa.types.is_string(array.type):
        return array.view(pa.binary())
    if pa.types.is_binary(array.type):
        return array
    if pa.types.is_large_string(array.type) or pa.types.is_large_binary(array.type):
        return pc.cast(array, pa.binary())  # at most MAX_ENCODED_BYTES per slice
    raise CopyEncodeError(f"column {name}: Arrow type {array.type} cannot be sent as text")


def _constant(array: pa.Array) -> bytes | None:
    """The value of a dictionary column that holds one non-null value on every row."""
    if (
        pa.types.is_dictionary(array.type)
        and len(array.dictionary) == 1
        and not array.null_count
        and not array.dictionary.null_count
    ):
        value = array.dictionary[0].as_py()
        return value.encode("utf-8") if isinstance(value, str) else value
    return None


def _integers(array: pa.Array, kind: str, name: str) -> np.ndarray:
    if not pa.types.is_integer(array.type):
        raise CopyEncodeError(f"column {name}: Arrow type {array.type} is not an integer")
    values = array.fill_null(0).to_numpy() if array.null_count else array.to_numpy()
    bits = 8 * INTEGER_BYTES[kind]
    if len(values) and (values.min() < -(2 ** (bits - 1)) or values.max() >= 2 ** (bits - 1)):
        raise CopyEncodeError(f"column {name}: a value does not fit PostgreSQL {kind}")
    return values


def encode_rows(batch: pa.RecordBatch, kinds: Sequence[str]) -> memoryview:
    """The rows of ``batch`` in binary COPY form (without the signature and trailer).

    ``kinds[i]`` is the PostgreSQL type family of column ``i``: ``text`` (text, varchar;
    Arrow string, binary or dictionary of them) or ``int2``/``int4``/``int8`` (Arrow
    integers; a value outside the column's range is an error, never wrapped).
    """
    n = batch.num_rows
    if len(kinds) != batch.num_columns:
        raise ValueError(f"{batch.num_columns} columns but {len(kinds)} kinds")
    pieces: list[pa.Array] = []
    run = _Run()
    run.constant(batch.num_columns.to_bytes(2, "big"))
    for name, column, kind in zip(batch.schema.names, batch.columns, kinds, strict=True):
        if kind in INTEGER_BYTES:
            width = INTEGER_BYTES[kind]
            values = _integers(column, kind, name)
            if not column.null_count:
                run.constant(width.to_bytes(4, "big"))
                run.per_row(f">i{width}", width, values)
                continue
            data = _binary_column(
                values.astype(f">i{width}").view(np.uint8), n, width, column.is_valid().buffers()[1]
            )
            lengths = np.full(n, width, np.int32)
        elif kind == TEXT:
            constant = _constant(column)
            if constant is not None:
                run.constant(len(constant).to_bytes(4, "big") + constant)
                continue
            data = _as_bytes(column, name)
            offsets = _offsets(data)
            lengths = np.diff(offsets)
            if n and not data.null_count and (lengths == lengths[0]).all():
                width = int(lengths[0])
                run.constant(width.to_bytes(4, "big"))
                if width:
                    start = int(offsets[0])
                    raw = np.frombuffer(data.buffers()[2], np.uint8, n * width, start)
                    run.per_row(f"V{width}", width, raw.view(f"V{width}"))
                continue
        else:
            raise ValueError(f"column {name}: unknown kind {kind!r}; expected one of {KINDS}")
        if data.null_count:
            lengths = np.where(data.is_valid().to_numpy(zero_copy_only=False), lengths, -1)
        run.per_row(">i4", 4, lengths)
        pieces += [_binary_column(run.build(n), n, len(run.template)), data]
        run = _Run()
    if not pieces:
        return memoryview(run.build(n))
    if run.template:
        pieces.append(_binary_column(run.build(n), n, len(run.template)))
    joined = pc.binary_join_element_wise(
        *pieces, b"", null_handling="replace", null_replacement=b""
    )
    offsets = _offsets(joined)
    return memoryview(joined.buffers()[2])[int(offsets[0]) : int(offsets[-1])]


def _encoded_size(batch: pa.RecordBatch) -> int:
    """An upper bound of the batch's size in COPY form, counting only its own slice."""
    size = 2 * batch.num_rows
    for column in batch.columns:
        size += 4 * len(column)
        if pa.types.is_dictionary(column.type):
            longest = pc.max(pc.binary_length(column.dictionary)).as_py() or 0
            size += len(column) * longest
        elif _is_text(column.type):
            offsets = _offsets(column)
            size += int(offsets[-1] - offsets[0])
        else:
            size += 8 * len(column)
    return size


def encode_batches(batch: pa.RecordBatch, kinds: Sequence[str]) -> Iterator[memoryview]:
    """``encode_rows`` over slices of ``batch`` of at most ``MAX_ENCODED_BYTES`` each."""
    if batch.num_rows <= 1 or _encoded_size(batch) <= MAX_ENCODED_BYTES:
        yield encode_rows(batch, kinds)
        return
    half = batch.num_rows // 2
    yield from encode_batches(batch.slice(0, half), kinds)
    yield from encode_batches(batch.slice(half), kinds)


def stream(batches: Iterator[pa.RecordBatch], kinds: Sequence[str]) -> Iterator[memoryview]:
    """A whole COPY stream: the signature, every batch's rows, the trailer."""
    yield memoryview(SIGNATURE)
    for batch in batches:
        if batch.num_rows:
            yield from encode_batches(batch, kinds)
    yield memoryview(TRAILER)
