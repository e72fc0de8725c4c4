"""The canonical data model: column names, allowed values, and the error every loader raises.

items:        item_id (str), item_type (str), title (str);
              optional description, language, genre; any other column is kept as metadata.
interactions: user_id (str), item_id (str), and the order as timestamp (epoch seconds or
              ISO 8601) or position (int, ties allowed); optional event (str, default
              "stream") and weight (float, default 1.0).
users:        user_id (str); optional split (train | valid | test); any other column is a
              demographic feature (for example country, age).
"""

from __future__ import annotations

from collections.abc import Sequence

ITEM_ID = "item_id"
ITEM_TYPE = "item_type"
TITLE = "title"
DESCRIPTION = "description"
LANGUAGE = "language"
GENRE = "genre"
USER_ID = "user_id"
TIMESTAMP = "timestamp"
POSITION = "position"
EVENT = "event"
WEIGHT = "weight"
SPLIT = "split"

ITEM_REQUIRED = (ITEM_ID, ITEM_TYPE, TITLE)
ITEM_OPTIONAL = (DESCRIPTION, LANGUAGE, GENRE)
INTERACTION_REQUIRED = (USER_ID, ITEM_ID)
ORDER_COLUMNS = (TIMESTAMP, POSITION)
DEFAULT_EVENT = "stream"
SPLITS = ("train", "valid", "test")


class DataValidationError(ValueError):
    """Bad input data. The message names the file, the column, how many rows and which.

    Example:
        interactions.tsv, column 'item_id': 3 rows reference items not in items.tsv
        (rows 17, 204, 9001; values '42', '43', '44'); expected every item_id to be in the items file.
    """

    def __init__(
        self,
        file: str,
        column: str | None,
        problem: str,
        rows: Sequence[int] = (),
        values: Sequence[object] = (),
        n_rows: int | None = None,
        expected: str = "",
    ) -> None:
        self.file = file
        self.column = column
        self.rows = list(rows)
        self.n_rows = len(self.rows) if n_rows is None else n_rows
        where = f"{file}" + (f", column '{column}'" if column else "")
        msg = f"{where}: {problem}"
        if self.n_rows:
            shown = ", ".join(str(r) for r in self.rows[:5])
            msg += f" ({self.n_rows} row{'s' if self.n_rows != 1 else ''}; first: row {shown}"
            if len(values):
                msg += "; values " + ", ".join(repr(v) for v in list(values)[:5])
            msg += ")"
        if expected:
            msg += f"; expected {expected}"
        super().__init__(msg)
