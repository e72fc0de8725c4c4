"""Every size limit of the HTTP service, in one place.

A request over a limit gets a 422 naming the field (or a 413 for the whole body) before any
work is done. ``docs/serving.md`` ("Security and limits") lists the same names and values;
``tests/serving/test_bad_requests.py`` checks that the two agree.
"""

from __future__ import annotations

#: Largest request body in bytes (413 above it). A body at every other limit below fits:
#: 500 history entries of 200-character ids and events are about 0.25 MB.
MAX_BODY_BYTES = 1_048_576
#: Longest history a request may carry (the two-tower reads only its last max_history items).
MAX_HISTORY = 500
#: Largest ``k`` (results per request).
MAX_K = 1000
#: Longest item id, user id, event name or item type.
MAX_ID = 200
#: Longest title search string ``q``.
MAX_QUERY = 200
#: Largest ``limit`` of a title search.
MAX_SEARCH_LIMIT = 100
#: Most demographic fields in ``user``.
MAX_USER_FIELDS = 32
#: Longest demographic field name.
MAX_USER_KEY = 64
#: Longest demographic string value.
MAX_USER_VALUE = 200
#: Longest ``run_dir`` of ``POST /admin/reload`` (a path under the runs root).
MAX_RUN_DIR = 1024
#: Shortest admin token accepted at start (``--admin-token`` / ``HGREC_ADMIN_TOKEN``).
MIN_ADMIN_TOKEN = 16
#: Longest admin token accepted at start.
MAX_ADMIN_TOKEN = 512
#: Characters of an invalid input echoed back in a 422 (the rest is cut).
MAX_ECHO = 100
#: Characters of an error message (the rest is cut; messages quote at most a short input).
MAX_MESSAGE = 2000

#: (name, value) of every limit, in the order of the docs table.
LIMITS: tuple[tuple[str, int], ...] = (
    ("MAX_BODY_BYTES", MAX_BODY_BYTES),
    ("MAX_HISTORY", MAX_HISTORY),
    ("MAX_K", MAX_K),
    ("MAX_ID", MAX_ID),
    ("MAX_QUERY", MAX_QUERY),
    ("MAX_SEARCH_LIMIT", MAX_SEARCH_LIMIT),
    ("MAX_USER_FIELDS", MAX_USER_FIELDS),
    ("MAX_USER_KEY", MAX_USER_KEY),
    ("MAX_USER_VALUE", MAX_USER_VALUE),
    ("MAX_RUN_DIR", MAX_RUN_DIR),
    ("MIN_ADMIN_TOKEN", MIN_ADMIN_TOKEN),
    ("MAX_ADMIN_TOKEN", MAX_ADMIN_TOKEN),
    ("MAX_ECHO", MAX_ECHO),
    ("MAX_MESSAGE", MAX_MESSAGE),
)
