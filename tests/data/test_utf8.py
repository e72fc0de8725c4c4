"""CSV/TSV text that is not UTF-8: one error naming the file, column, rows, lines and bytes."""

from __future__ import annotations

import gzip
from pathlib import Path

import pyarrow as pa
import pytest

from hgrec.data.io import _non_utf8_rows, read_table
from hgrec.data.schema import DataValidationError


def _write(path: Path, rows: list[bytes]) -> Path:
    data = b"\n".join([b"user_id,item_id,position", *rows]) + b"\n"
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


@pytest.mark.parametrize("name", ["interactions.csv", "interactions.csv.gz"])
def test_non_utf8_id_names_column_row_and_line(tmp_path: Path, name: str) -> None:
    rows = [b"u1,i1,0", b"u1,i2,1", b"u\xff2,i1,0", b"u2,i3,1"]
    with pytest.raises(DataValidationError) as info:
        read_table(_write(tmp_path / name, rows))
    err = info.value
    assert err.file == name and err.column == "user_id" and err.rows == [3]
    assert "values b'u\\xff2'" in str(err) and "(line 4 of the file)" in str(err)


def test_many_bad_rows_show_the_first_five(tmp_path: Path) -> None:
    rows = [f"u{i},i{i},0".encode() if i % 3 else f"\xe9{i},i{i},0".encode("latin-1")
            for i in range(1, 40)]
    with pytest.raises(DataValidationError) as info:
        read_table(_write(tmp_path / "interactions.csv", rows))
    assert info.value.rows == [3, 6, 9, 12, 15]
    assert "and more rows after these" in str(info.value)


def test_bisection_finds_every_bad_row_in_order() -> None:
    values = [b"ok"] * 1000
    for r in (0, 17, 500, 999):
        values[r] = b"\xc3("  # a truncated two-byte sequence
    arr = pa.array(values, pa.binary())
    assert _non_utf8_rows(arr, limit=10) == ([0, 17, 500, 999], True)
    assert _non_utf8_rows(arr, limit=2) == ([0, 17], False)
    assert _non_utf8_rows(pa.array([b"fine"] * 3, pa.binary())) == ([], True)
