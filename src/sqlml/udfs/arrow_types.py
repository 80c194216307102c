"""The plain Arrow types sqlml computes on, whatever type an engine hands out.

Engines give the same values in different Arrow types: DataFusion reads Parquet text as
``string_view``, files can hold ``large_string``, dictionaries, decimals, ``date64`` or
``float16``, and timestamps come with or without a time zone. pyarrow's compute kernels
do not all take every one of them (no ``array_sort_indices`` or ``coalesce`` for views,
for one), so training, predict and evaluate first turn each column into its plain type:

* ``string_view`` and ``large_string`` become ``string``; ``binary_view`` and
  ``large_binary`` become ``binary``; list views and large lists become lists;
* a dictionary becomes its decoded values (of their plain type);
* a decimal becomes ``float64`` (what every model is fed);
* ``date64`` becomes ``date32``, ``float16`` becomes ``float32``;
* a timestamp with a time zone becomes the same instant without one, in UTC: calendar
  parts (hour, day, ...) are those of UTC on every engine, whatever the session's zone.

Columns already plain are returned as they are, without a copy.
"""

from __future__ import annotations

import pyarrow as pa

from sqlml.errors import UnsupportedColumnType

__all__ = ["plain", "plain_column", "plain_table", "plain_type"]


def plain_type(type_: pa.DataType) -> pa.DataType:
    """The plain type sqlml computes on for a column of ``type_``.

    >>> plain_type(pa.string_view()), plain_type(pa.dictionary(pa.int8(), pa.large_string()))
    (DataType(string), DataType(string))
    >>> plain_type(pa.decimal128(10, 2)), plain_type(pa.timestamp("ms", tz="Europe/Berlin"))
    (DataType(double), TimestampType(timestamp[ms]))
    """
    if pa.types.is_dictionary(type_):
        return plain_type(type_.value_type)
    if type_ in (pa.string_view(), pa.large_string()):
        return pa.string()
    if type_ in (pa.binary_view(), pa.large_binary()):
        return pa.binary()
    if pa.types.is_decimal(type_):
        return pa.float64()
    if pa.types.is_date64(type_):
        return pa.date32()
    if pa.types.is_float16(type_):
        return pa.float32()
    if pa.types.is_timestamp(type_) and type_.tz is not None:
        return pa.timestamp(type_.unit)
    if any(
        check(type_)
        for check in (pa.types.is_large_list, pa.types.is_list_view, pa.types.is_large_list_view)
    ):
        return pa.list_(plain_type(type_.value_type))
    return type_


def plain(array: pa.Array, name: str = "") -> pa.Array:
    """``array`` (the column ``name``) in its :func:`plain_type`, the same array when it is
    already plain."""
    target = plain_type(array.type)
    if target == array.type:
        return array
    source = array
    if pa.types.is_dictionary(source.type):
        source = source.dictionary_decode()
    if pa.types.is_timestamp(source.type) and source.type.tz is not None:
        # The stored values are UTC instants whatever the zone: drop the zone, keep them.
        return source.view(pa.int64()).view(target)
    try:
        return source.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise UnsupportedColumnType(name, str(array.type)) from exc


def plain_column(column: pa.Array | pa.ChunkedArray, name: str = "") -> pa.Array | pa.ChunkedArray:
    """:func:`plain` for an array or each chunk of a chunked array."""
    if isinstance(column, pa.ChunkedArray):
        target = plain_type(column.type)
        if target == column.type:
            return column
        return pa.chunked_array([plain(chunk, name) for chunk in column.chunks], type=target)
    return plain(column, name)


def plain_table(table: pa.Table) -> pa.Table:
    """``table`` with every column in its :func:`plain_type` (the same table if all are)."""
    if all(plain_type(field.type) == field.type for field in table.schema):
        return table
    names = table.column_names
    return pa.table([plain_column(table.column(n), n) for n in names], names=names)
