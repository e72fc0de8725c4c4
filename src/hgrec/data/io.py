"""Reading and writing tables: Parquet, CSV and TSV (optionally gzip-compressed), by extension.

Id columns (``user_id``, ``item_id`` and any listed in ``str_columns``) are always read as
strings, so ``"007"`` stays ``"007"`` and ids written as integers still match ids written as
text. Only an empty field is null in CSV/TSV; ``"NA"`` or ``"null"`` are kept as text.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

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
        DataValidationError: unknown extension, or a file that cannot be parsed.
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
        return pacsv.read_csv(path, parse_options=parse, convert_options=convert)
    except pa.ArrowInvalid as e:
        if "conversion error" not in str(e).lower():
            raise
    # Arrow infers a column's type from the first block and fails on a later odd value
    # ('abc' in an integer column); read every column as text so validation can name the row.
    names = _header_names(path, parse)
    convert = pacsv.ConvertOptions(
        column_types={n: pa.string() for n in names}, strings_can_be_null=True, null_values=[""]
    )
    return pacsv.read_csv(path, parse_options=parse, convert_options=convert)


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
