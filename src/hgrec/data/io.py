"""Reading and writing tables: Parquet, CSV and TSV (optionally gzip-compressed), by extension.

Id columns (``user_id``, ``item_id`` and any listed in ``str_columns``) are always read as
strings, so ``"007"`` stays ``"007"`` and ids written as integers still match ids written as
text. Only an empty field is null in CSV/TSV; ``"NA"`` or ``"null"`` are kept as text.
CSV/TSV text must be UTF-8: bytes that are not stop the read with an error naming the column,
the rows and the lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import NoReturn

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from hgrec.data.schema import ITEM_ID, USER_ID, DataValidationError

ID_COLUMNS = (USER_ID, ITEM_ID)
FORMATS = {".parquet": "parquet", ".csv": "csv", ".tsv": "tsv", ".csv.gz": "csv", ".tsv.gz": "tsv"}
_DELIMITER = {"csv": ",", "tsv": "\t"}


def table_format(path: str | Path) -> str:
    """'parquet', 'csv' or 'tsv' from the file name; raises for any other extension."""
    name = Path(path).name.lower()
    # Longest suffix first so 'x.csv.gz' is not read as an unknown '.gz'.
    for ext in sorted(FORMATS, key=len, reverse=True):
        if name.endswith(ext):
            return FORMATS[ext]
    raise DataValidationError(
        str(path),
        None,
        "unknown file extension",
        expected="one of " + ", ".join(FORMATS),
    )


def read_table(path: str | Path, str_columns: Sequence[str] = ()) -> pd.DataFrame:
    """Read a Parquet, CSV or TSV file (``.csv.gz``/``.tsv.gz`` too) into a DataFrame.

    Args:
        path: the file; its extension picks the reader.
        str_columns: extra columns to read as strings besides ``user_id`` and ``item_id``.

    Returns:
        One row per data row, in file order (row ``r`` of the frame is data row ``r + 1``
        of the file, not counting the header). String columns use pandas' ``str`` dtype.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        DataValidationError: unknown extension, a file that cannot be parsed, or CSV/TSV text
            that is not UTF-8.
    """
    path = Path(path)
    fmt = table_format(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found; expected a {fmt} file at this path")
    as_str = tuple(dict.fromkeys((*ID_COLUMNS, *str_columns)))
    try:
        table = pq.read_table(path) if fmt == "parquet" else _read_delimited(path, fmt, as_str)
    except (pa.ArrowInvalid, OSError) as e:
        raise DataValidationError(path.name, None, f"cannot parse the {fmt} file: {e}") from None
    for name in as_str:
        if name in table.column_names and not pa.types.is_string(table.schema.field(name).type):
            i = table.column_names.index(name)
            table = table.set_column(i, name, table.column(name).cast(pa.string()))
    return table.to_pandas()


def _read_delimited(path: Path, fmt: str, as_str: Sequence[str]) -> pa.Table:
    parse = pacsv.ParseOptions(delimiter=_DELIMITER[fmt])
    types = {name: pa.string() for name in as_str}
    convert = pacsv.ConvertOptions(column_types=types, strings_can_be_null=True, null_values=[""])
    try:
        table = pacsv.read_csv(path, parse_options=parse, convert_options=convert)
    except pa.ArrowInvalid as e:
        if "utf8" in str(e).lower():  # an id column (read as text) holds non-UTF-8 bytes
            _raise_not_utf8(path, parse)
        if "conversion error" not in str(e).lower():
            raise
        # Arrow infers a column's type from the first block and fails on a later odd value
        # ('abc' in an integer column); read every column as text so validation can name the row.
        names = _header_names(path, parse)
        convert = pacsv.ConvertOptions(
            column_types={n: pa.string() for n in names}, strings_can_be_null=True, null_values=[""]
        )
        try:
            table = pacsv.read_csv(path, parse_options=parse, convert_options=convert)
        except pa.ArrowInvalid as e2:
            if "utf8" in str(e2).lower():
                _raise_not_utf8(path, parse)
            raise
    # Arrow infers binary, not string, for a column with non-UTF-8 bytes.
    if any(pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type) for f in table.schema):
        _raise_not_utf8(path, parse)
    return table


def _raise_not_utf8(path: Path, parse: pacsv.ParseOptions) -> NoReturn:
    """Raise a DataValidationError for the first column holding bytes that are not UTF-8.

    Rows count from 1 after the header, so row r is line r + 1 of the file when no quoted
    field spans lines.
    """
    names = _header_names(path, parse)
    convert = pacsv.ConvertOptions(column_types={n: pa.binary() for n in names})
    table = pacsv.read_csv(path, parse_options=parse, convert_options=convert)
    for name in table.column_names:  # loop over columns
        rows, complete = _non_utf8_rows(table.column(name).combine_chunks())
        if rows:
            values = [table.column(name)[r].as_py()[:40] for r in rows]
            lines = ", ".join(str(r + 2) for r in rows)
            more = "" if complete else ", and more rows after these"
            raise DataValidationError(
                path.name,
                name,
                f"bytes that are not UTF-8 text{more}",
                rows=[r + 1 for r in rows],
                values=values,
                expected=f"UTF-8 text (line{'s' if len(rows) > 1 else ''} {lines} of the file); "
                "re-save the file as UTF-8",
            )
    raise DataValidationError(path.name, None, "text that is not UTF-8", expected="UTF-8 text")


def _non_utf8_rows(values: pa.Array, limit: int = 5) -> tuple[list[int], bool]:
    """(0-based rows of ``values`` (binary) that are not valid UTF-8, the first ``limit`` in
    order; True when those are all of them).

    Bisection: a cast to string validates a whole slice in C, so finding k bad rows takes
    about k * log2(n) casts instead of a Python loop over the rows.
    """
    found: list[int] = []
    todo = [(0, len(values))]  # a stack of [lo, hi) slices, the leftmost on top
    while todo and len(found) < limit:
        lo, hi = todo.pop()
        if _is_utf8(values.slice(lo, hi - lo)):
            continue
        if hi - lo == 1:
            found.append(lo)
            continue
        mid = (lo + hi) // 2
        todo += [(mid, hi), (lo, mid)]
    return found, all(_is_utf8(values.slice(lo, hi - lo)) for lo, hi in todo)


def _is_utf8(values: pa.Array) -> bool:
    try:
        values.cast(pa.string())
    except pa.ArrowInvalid:
        return False
    return True


def _header_names(path: Path, parse: pacsv.ParseOptions) -> list[str]:
    reader = pacsv.open_csv(
        path,
        parse_options=parse,
        convert_options=pacsv.ConvertOptions(
            column_types={}, strings_can_be_null=True, null_values=[""]
        ),
        read_options=pacsv.ReadOptions(block_size=1 << 16),
    )
    return list(reader.schema.names)


class TableWriter:
    """Append tables to one Parquet, CSV or TSV file (format from the extension).

    Used for data larger than memory: write it block by block. Pandas categoricals are
    written as plain strings so every block has the same schema.

    Example:
        >>> with TableWriter("interactions.parquet") as w:  # doctest: +SKIP
        ...     for block in blocks:
        ...         w.write(block)
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.format = table_format(self.path)
        self.rows = 0
        self._writer: pq.ParquetWriter | pacsv.CSVWriter | None = None
        self._sink: pa.NativeFile | None = None
        self._schema: pa.Schema | None = None

    def write(self, data: pd.DataFrame | pa.Table) -> None:
        table = _to_arrow(data)
        if self._writer is None:
            self._open(table.schema)
        assert self._writer is not None and self._schema is not None
        if table.schema != self._schema:
            table = table.cast(self._schema)
        self._writer.write_table(table)
        self.rows += table.num_rows

    def _open(self, schema: pa.Schema) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._schema = schema
        if self.format == "parquet":
            self._writer = pq.ParquetWriter(self.path, schema)
            return
        gz = self.path.name.lower().endswith(".gz")
        path = str(self.path)
        self._sink = pa.CompressedOutputStream(path, "gzip") if gz else pa.OSFile(path, "wb")
        options = pacsv.WriteOptions(delimiter=_DELIMITER[self.format])
        self._writer = pacsv.CSVWriter(self._sink, schema, write_options=options)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._sink is not None:
            self._sink.close()
        self._writer = self._sink = None

    def __enter__(self) -> TableWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def write_table(data: pd.DataFrame | pa.Table, path: str | Path) -> Path:
    """Write one table to ``path`` (Parquet, CSV or TSV by extension); returns the path."""
    with TableWriter(path) as w:
        w.write(data)
    return Path(path)


def _to_arrow(data: pd.DataFrame | pa.Table) -> pa.Table:
    if isinstance(data, pa.Table):
        table = data
    else:
        table = pa.Table.from_pandas(data, preserve_index=False)
    cols = [
        c.cast(c.type.value_type) if pa.types.is_dictionary(c.type) else c for c in table.columns
    ]
    return pa.Table.from_arrays(cols, names=table.column_names)
