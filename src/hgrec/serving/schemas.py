"""Request and response bodies of the HTTP service (they make its OpenAPI schema).

Every string is checked to be proper Unicode (JSON allows a lone surrogate such as
``"\\ud800"``, which no UTF-8 answer can carry) and bounded by a limit of
:mod:`hgrec.serving.limits`; numbers are strict (``k: true`` is not 1) and finite. A request
over any of them gets FastAPI's 422 naming the field, the same way as any other invalid body.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StringConstraints
from pydantic_core import PydanticCustomError

from hgrec.serving.limits import (
    MAX_HISTORY,
    MAX_ID,
    MAX_K,
    MAX_QUERY,
    MAX_RUN_DIR,
    MAX_USER_FIELDS,
    MAX_USER_KEY,
    MAX_USER_VALUE,
)


def proper_unicode(value: Any) -> Any:
    """Refuse a string that cannot be encoded as UTF-8 (a lone surrogate); pass anything else.

    Raises:
        PydanticCustomError: type ``string_unicode``, naming the code point and its position.
    """
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as e:
            raise PydanticCustomError(
                "string_unicode",
                "String should be valid Unicode; found a lone surrogate U+{code} at position "
                "{position}",
                {"code": f"{ord(value[e.start]):04X}", "position": e.start},
            ) from None
    return value


_UNICODE = BeforeValidator(proper_unicode)
#: An item id, user id, event name or item type.
Id = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID), _UNICODE]
#: A title search string.
SearchText = Annotated[str, StringConstraints(min_length=1, max_length=MAX_QUERY), _UNICODE]
#: A demographic field name.
UserKey = Annotated[str, StringConstraints(min_length=1, max_length=MAX_USER_KEY), _UNICODE]
#: A run directory named in a reload.
RunDirText = Annotated[str, StringConstraints(min_length=1, max_length=MAX_RUN_DIR), _UNICODE]
#: A finite JSON number (NaN and Infinity, which Python's JSON reader accepts, are refused).
FiniteFloat = Annotated[float, Field(strict=True, allow_inf_nan=False)]
#: One demographic value: a short string, a finite number, a boolean or null.
UserValue = Annotated[
    Annotated[str, StringConstraints(max_length=MAX_USER_VALUE)] | FiniteFloat | StrictBool | None,
    _UNICODE,
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HistoryEntry(_Body):
    item_id: Id = Field(description="catalogue item id")
    event: Id | None = Field(None, description="event name; default 'stream'")
    timestamp: FiniteFloat | None = Field(
        None, description="epoch seconds; when given on every entry the history is sorted by it"
    )


class RecommendRequest(_Body):
    history: list[HistoryEntry] = Field(
        default_factory=list, max_length=MAX_HISTORY,
        description=f"the user's interactions, oldest first (at most {MAX_HISTORY})",
    )
    user: dict[UserKey, UserValue] | None = Field(
        None, max_length=MAX_USER_FIELDS,
        description="demographic fields such as country or age (missing ones count as unknown)",
    )
    item_type: Id | None = Field(
        None, description="type of the recommended items; default: the run's target type"
    )
    k: int = Field(10, ge=1, le=MAX_K, strict=True, description="number of recommendations")
    exclude_seen: StrictBool = Field(True, description="never recommend items of the history")


class Because(BaseModel):
    item_id: str
    title: str
    similarity: float = Field(description="dot product of the two items' embeddings")


class RecommendedItem(BaseModel):
    item_id: str
    title: str
    item_type: str
    score: float
    because: list[Because] = Field(description="history items that contribute most, best first")


class RecommendResponse(BaseModel):
    items: list[RecommendedItem]
    unknown_items: list[str] = Field(description="history item ids not in the catalogue (skipped)")
    item_type: str
    model: str
    run_id: str


class ItemOut(BaseModel):
    item_id: str
    title: str
    item_type: str


class SimilarItem(ItemOut):
    score: float


class SimilarResponse(BaseModel):
    item: ItemOut
    items: list[SimilarItem]
    run_id: str


class SearchResponse(BaseModel):
    items: list[ItemOut]
    run_id: str


class ReloadRequest(_Body):
    run_dir: RunDirText | None = Field(
        None, description="run directory to switch to, relative to the runs root (or an "
        "absolute path inside it); default: the served path again (re-resolved, so a moved "
        "symlink switches runs)"
    )


class ReloadResponse(BaseModel):
    previous_run_id: str
    run_id: str
    seconds: float


class ErrorMessage(BaseModel):
    """Every error answer except 422: one human-readable sentence."""

    detail: str


class HealthResponse(BaseModel):
    status: str
    run_id: str
    model: str
