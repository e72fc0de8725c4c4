"""Column checks for canonical tables; each failure raises one :class:`DataValidationError`.

Row numbers in messages count data rows from 1: row 1 is the first row after the header of a
file (or the first row of a DataFrame). Every check is vectorised over the column.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NoReturn

import numpy as np
import pandas as pd
import pyarrow as pa

from hgrec.data.schema import DataValidationError

_SHOWN = 5


def fail(
    file: str,
    column: str | None,
    problem: str,
    bad: np.ndarray,
    values: pd.Series | np.ndarray,
    expected: str,
) -> NoReturn:
    """Raise a :class:`DataValidationError` for the rows where ``bad`` (n,) bool is True.

    ``values`` is (n,) aligned with ``bad``; the first few bad rows and values are shown.
    """
    rows = np.flatnonzero(bad)
    first = rows[:_SHOWN]
    vals = np.asarray(values, dtype=object)[first]
    # In a float column NaN may be a NaN in the file, so it is shown; elsewhere it is a null.
    floats = np.asarray(values).dtype.kind == "f"
    raise DataValidationError(
        file,
        column,
        problem,
        rows=(first + 1).tolist(),
        values=[_plain(v, floats) for v in vals],
        n_rows=len(rows),
        expected=expected,
    )


class _Empty:
    """A null or empty field in a message: shown as <empty>, not as None."""

    def __repr__(self) -> str:
        return "<empty>"


EMPTY = _Empty()


def _plain(v: object, keep_nan: bool = False) -> object:
    """Python scalars for messages: numpy 2 would print np.float64(1.5) instead of 1.5.

    Nulls are shown as <empty>; NaN too unless ``keep_nan`` (then it prints as nan).
    """
    if v is None or v is pd.NA or v is pd.NaT:
        return EMPTY
    if isinstance(v, float | np.floating) and np.isnan(v) and not keep_nan:
        return EMPTY
    return v.item() if isinstance(v, np.generic) else v


def require_columns(df: pd.DataFrame, file: str, columns: Iterable[str]) -> None:
    """Raise if any of ``columns`` is missing, naming the columns the file does have."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataValidationError(
            file,
            missing[0],
            f"missing column{'s' if len(missing) > 1 else ''} "
            + ", ".join(repr(c) for c in missing),
            expected=f"columns {list(columns)}; the file has {list(map(str, df.columns))}",
        )


def has_rows(df: pd.DataFrame, file: str, what: str) -> None:
    """Raise when the table has no data rows (a header alone): nothing to learn from."""
    if len(df) == 0:
        raise DataValidationError(
            file, None, "no data rows (only a header)", expected=f"at least one {what} row"
        )


def nonempty_strings(df: pd.DataFrame, file: str, column: str, what: str) -> pd.Series:
    """The column as strings; raises on null or empty (whitespace-only) values.

    Returns:
        (n,) ``str`` Series, values unchanged apart from the cast (ids are not stripped).
    """
    raw = df[column]
    null = raw.isna().to_numpy()
    s = raw.astype("str")
    empty = null | (s.str.strip().str.len() == 0).to_numpy()
    if empty.any():
        fail(file, column, f"null or empty {what}", empty, raw, f"a non-empty {what} on every row")
    return s


def encode_strings(
    df: pd.DataFrame, file: str, column: str, what: str, allow_empty: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dictionary-encode a string column, checking emptiness on the distinct values only.

    Much faster than per-row string checks on tens of millions of rows with few distinct ids.

    Returns:
        codes: (n,) int64 index into ``uniques``; -1 for null or empty values (only possible
            with ``allow_empty``).
        uniques: (k,) object array of the distinct non-empty strings, in order of first
            appearance.
        empty: (n,) bool, True where the value is null or empty (all False unless allow_empty).
    """
    raw = df[column]
    s = raw if pd.api.types.is_string_dtype(raw.dtype) else raw.astype("str")
    indices, dictionary = _dictionary_encode(pa.array(s, type=pa.string()))
    null = np.isnan(indices) if indices.dtype.kind == "f" else np.zeros(len(indices), dtype=bool)
    codes = np.where(null, -1, indices).astype(np.int64)
    words = np.asarray(dictionary.to_pylist(), dtype=object)
    blank = pd.Series(words, dtype="str").str.strip().str.len().to_numpy() == 0
    empty = null | np.append(blank, False)[codes]  # codes == -1 reads the appended False
    if empty.any() and not allow_empty:
        fail(file, column, f"null or empty {what}", empty, raw, f"a non-empty {what} on every row")
    # Drop blank words from the dictionary and renumber the codes.
    keep = ~blank
    renumber = np.cumsum(keep) - 1
    codes = np.where(empty, -1, np.append(renumber, -1)[codes])
    return codes.astype(np.int64), words[keep], empty


def _dictionary_encode(arr: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, pa.Array]:
    """((n,) indices: int, or float with NaN where null; (k,) dictionary, first-seen order)."""
    if isinstance(arr, pa.Array):
        enc = arr.dictionary_encode()
        return enc.indices.to_numpy(zero_copy_only=False), enc.dictionary
    if arr.num_chunks == 0:
        return np.zeros(0, dtype=np.int64), pa.array([], pa.string())
    enc = arr.dictionary_encode()
    dictionary = enc.chunks[-1].dictionary
    # Arrow encodes the chunks with one memo table, so all share the final dictionary (the
    # check is a pointer comparison); if a version stops doing so, encode one combined array.
    if not all(c.dictionary.equals(dictionary) for c in enc.chunks):
        return _dictionary_encode(arr.combine_chunks())
    has_null = any(c.null_count for c in enc.chunks)
    parts = [c.indices.to_numpy(zero_copy_only=False) for c in enc.chunks]
    return np.concatenate([p.astype(np.float64) if has_null else p for p in parts]), dictionary


def unique(ids: pd.Series, file: str, column: str, what: str) -> None:
    """Raise on repeated ids; the rows shown are the repeats (not their first occurrence)."""
    dup = ids.duplicated(keep="first").to_numpy()
    if dup.any():
        fail(file, column, f"duplicate {what}", dup, ids, f"each {what} exactly once")


def allowed_values(
    s: pd.Series, file: str, column: str, allowed: Sequence[str], what: str
) -> pd.Series:
    """The column as strings; raises where a value (null included) is not in ``allowed``."""
    null = s.isna().to_numpy()
    as_str = s.astype("str")
    bad = null | ~as_str.isin(list(allowed)).to_numpy()
    if bad.any():
        fail(file, column, f"unknown {what}", bad, s, "one of " + ", ".join(map(repr, allowed)))
    return as_str


def known(
    index: np.ndarray, ids: pd.Series, file: str, column: str, other: str, what: str
) -> None:
    """Raise where ``index`` (n,) int64 is -1, i.e. ``ids`` are not in the ``other`` table."""
    bad = index < 0
    if bad.any():
        fail(
            file,
            column,
            f"rows reference {what} not in {other}",
            bad,
            ids,
            f"every {column} to be in {other}",
        )


def _numbers(s: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(values float64 (n,), parsed bool (n,)): numeric parse of any column; null -> NaN."""
    if pd.api.types.is_bool_dtype(s.dtype):
        return np.full(len(s), np.nan), np.zeros(len(s), dtype=bool)
    if pd.api.types.is_numeric_dtype(s.dtype):
        x = s.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        x = pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    x = np.array(x, dtype=np.float64)  # a writable copy: pandas may hand out read-only views
    return x, ~np.isnan(x)


def timestamps(s: pd.Series, file: str, column: str) -> np.ndarray:
    """Seconds since the epoch, (n,) float64.

    Accepts numbers (epoch seconds), datetimes, and text that is either a number or an ISO 8601
    date-time; text without a UTC offset is read as UTC. One column may mix the two forms.
    """
    expected = "epoch seconds (a number) or an ISO 8601 date-time such as '2024-03-08T12:00:00Z'"
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        t = s if getattr(s.dtype, "tz", None) is not None else s.dt.tz_localize("UTC")
        secs = ((t - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)).to_numpy(
            dtype=np.float64, na_value=np.nan
        )
    else:
        secs, _ = _numbers(s)
        text = np.isnan(secs) & s.notna().to_numpy()
        if text.any() and not pd.api.types.is_numeric_dtype(s.dtype):
            parsed = pd.to_datetime(s[text], format="ISO8601", utc=True, errors="coerce")
            secs[text] = ((parsed - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)).to_numpy(
                dtype=np.float64, na_value=np.nan
            )
    bad = ~np.isfinite(secs)
    if bad.any():
        fail(file, column, "unparseable or missing timestamps", bad, s, expected)
    return secs


def positions(s: pd.Series, file: str, column: str) -> np.ndarray:
    """Integer positions (ties allowed) as (n,) float64; raises on non-integers and nulls."""
    x, _ = _numbers(s)
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(x) | (x != np.round(x)) | (np.abs(x) > 2.0**53)
    if bad.any():
        fail(file, column, "non-integer or missing positions", bad, s, "an integer on every row")
    return x


def weights(s: pd.Series, file: str, column: str) -> np.ndarray:
    """Interaction weights, (n,) float32; raises on non-numeric, non-finite or negative values."""
    x, parsed = _numbers(s)
    if not parsed.all():
        # A float column reads an empty field as NaN too, so the two are reported together.
        expected = "a finite number >= 0 on every row"
        fail(file, column, "missing, NaN or non-numeric weights", ~parsed, s, expected)
    if not np.isfinite(x).all():
        fail(file, column, "non-finite weights", ~np.isfinite(x), s, "a finite number >= 0")
    if (x < 0).any():
        fail(file, column, "negative weights", x < 0, s, "a finite number >= 0")
    return x.astype(np.float32)
