"""Request and response bodies of the HTTP service (they make its OpenAPI schema).

Limits live here so that a request over them gets FastAPI's 422 naming the field, the same
way as any other invalid body.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

#: Longest history a request may carry (the two-tower reads only its last max_history items).
MAX_HISTORY = 500
#: Largest k.
MAX_K = 1000
#: Longest id, event, type or title-query string accepted.
MAX_STR = 200
#: Most demographic fields in ``user``.
MAX_USER_FIELDS = 32


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HistoryEntry(_Body):
    item_id: str = Field(min_length=1, max_length=MAX_STR, description="catalogue item id")
    event: str | None = Field(
        None, min_length=1, max_length=MAX_STR, description="event name; default 'stream'"
    )
    timestamp: float | None = Field(
        None, description="epoch seconds; when given on every entry the history is sorted by it"
    )


class RecommendRequest(_Body):
    history: list[HistoryEntry] = Field(
        default_factory=list, max_length=MAX_HISTORY,
        description=f"the user's interactions, oldest first (at most {MAX_HISTORY})",
    )
    user: dict[str, str | float | bool | None] | None = Field(
        None, max_length=MAX_USER_FIELDS,
        description="demographic fields such as country or age (missing ones count as unknown)",
    )
    item_type: str | None = Field(
        None, max_length=MAX_STR, description="type of the recommended items; default: the run's "
        "target type"
    )
    k: int = Field(10, ge=1, le=MAX_K, description="number of recommendations")
    exclude_seen: bool = Field(True, description="never recommend items of the history")


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
    run_dir: str | None = Field(
        None, max_length=4096, description="run directory to switch to; default: the served path "
        "again (re-resolved, so a moved symlink switches runs)"
    )


class ReloadResponse(BaseModel):
    previous_run_id: str
    run_id: str
    seconds: float
