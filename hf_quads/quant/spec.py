"""QuantSpec: what to quantize and how, validated when built."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from hf_quads.errors import HfQuadsError

__all__ = ["HEAD_PATTERN", "METHODS", "QuantSpec", "QuantizationError"]

#: Methods :func:`~hf_quads.quant.quantize_` knows.
METHODS: tuple[str, ...] = ("kmeans", "uniform", "none")
#: Module names treated as the task head (see ``QuantSpec.quantize_head``).
HEAD_PATTERN = r"(?:^|\.)(?:classifier|projector|lm_head|proj_out|score)$"
_GRANULARITIES = ("tensor", "channel", "group")
_KMEANS_INITS = ("quantile", "random")


class QuantizationError(HfQuadsError, ValueError):
    """A quantization setting, model or checkpoint cannot be used as asked (the message says why)."""


def _check_bits(value: Any, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 8:
        raise QuantizationError(f"{what} must be an integer from 1 to 8, got {value!r}")


def _check_patterns(value: Any, what: str) -> list[str]:
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise QuantizationError(f"{what} must be a list of regular expressions, got {value!r}")
    for pattern in value:
        _compile(pattern, what)
    return list(value)


def _compile(pattern: Any, what: str) -> re.Pattern[str]:
    if not isinstance(pattern, str):
        raise QuantizationError(f"{what} holds {pattern!r}; patterns must be strings")
    try:
        return re.compile(pattern)
    except re.error as err:
        raise QuantizationError(
            f"{what} holds an invalid regular expression {pattern!r}: {err}"
        ) from err


@dataclass
class QuantSpec:
    """How :func:`~hf_quads.quant.quantize_` quantizes a model.

    Module selection (all conditions must hold). Candidates are the modules whose
    ``weight`` is a plain floating parameter of their own: ``nn.Linear``,
    ``nn.Conv1d``, ``nn.Conv2d`` (subclasses that keep the standard ``forward``),
    and ``nn.Embedding`` with ``quantize_embeddings``. Weights under a
    parametrization or weight norm (wav2vec2/HuBERT positional conv), weights
    shared by several modules (tied embeddings) and modules with a custom
    ``forward`` are never quantized. Patterns are Python regular expressions
    matched with ``re.search`` on the module name from ``named_modules()``
    (``"layers\\.0\\."`` matches inside a name, anchor with ``^``/``$``).

    Attributes:
        method: ``"kmeans"`` (QUADS: a codebook of ``2**bits`` centroids per group,
            re-estimated after every optimizer step), ``"uniform"`` (affine grid with
            LSQ-learned scales) or ``"none"`` (leave the model unquantized).
        bits: bits per weight, 1 to 8 (uniform symmetric: 2 to 8).
        module_bits: ``{pattern: bits}`` for mixed precision; the first pattern
            (in insertion order) that matches a module name gives its bits.
        include: only modules matching one of these patterns (None: every candidate).
        exclude: never modules matching one of these patterns.
        quantize_head: quantize the task head, i.e. modules whose name matches
            ``head_pattern`` (default: a last name part ``classifier``, ``projector``,
            ``lm_head``, ``proj_out`` or ``score``).
        head_pattern: the regular expression naming head modules.
        quantize_embeddings: also quantize ``nn.Embedding`` weights.
        group_size: ``None`` = one group per tensor (k-means: one codebook per
            tensor, as QUADS); else each row (output channel) is cut into runs of
            ``group_size`` consecutive weights, the last run of a row may be shorter.
            For uniform quantization it is used with ``granularity="group"``.
        kmeans_iters: Lloyd iterations of the initial 1-D k-means fit (it stops
            earlier once converged; each iteration is cheap on sorted values).
        kmeans_init: ``"quantile"`` (deterministic) or ``"random"`` (``seed``).
        reassign: after each centroid update, move every weight to its nearest
            centroid (labels are fixed otherwise, as in QUADS).
        snap: after each update, overwrite the latent weights with their centroid
            (QUADS behaviour).
        seed: seed of the random k-means initialisation.
        symmetric: uniform: fixed zero point at the middle code (True) or a
            learned zero point (False).
        granularity: uniform: one scale per ``"tensor"``, per output ``"channel"``
            or per ``"group"`` of ``group_size`` weights of a row.
        learnable_scale: uniform: train scales (and zero points) with LSQ.
    """

    method: str = "kmeans"
    bits: int = 4
    module_bits: dict[str, int] = field(default_factory=dict)
    include: list[str] | None = None
    exclude: list[str] = field(default_factory=list)
    quantize_head: bool = True
    head_pattern: str = HEAD_PATTERN
    quantize_embeddings: bool = False
    group_size: int | None = None
    kmeans_iters: int = 100
    kmeans_init: str = "quantile"
    reassign: bool = False
    snap: bool = True
    seed: int = 0
    symmetric: bool = True
    granularity: str = "channel"
    learnable_scale: bool = True

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise QuantizationError(
                f"method must be one of {', '.join(METHODS)}, got {self.method!r}"
            )
        _check_bits(self.bits, "bits")
        if not isinstance(self.module_bits, dict):
            raise QuantizationError(
                f"module_bits must be a dict {{pattern: bits}}, got {self.module_bits!r}"
            )
        for pattern, bits in self.module_bits.items():
            _compile(pattern, "module_bits")
            _check_bits(bits, f"module_bits[{pattern!r}]")
        if self.include is not None:
            self.include = _check_patterns(self.include, "include")
        self.exclude = _check_patterns(self.exclude, "exclude")
        _compile(self.head_pattern, "head_pattern")
        for name in ("quantize_head", "quantize_embeddings", "reassign", "snap", "symmetric"):
            if not isinstance(getattr(self, name), bool):
                raise QuantizationError(
                    f"{name} must be True or False, got {getattr(self, name)!r}"
                )
        if not isinstance(self.learnable_scale, bool):
            raise QuantizationError(
                f"learnable_scale must be True or False, got {self.learnable_scale!r}"
            )
        if self.group_size is not None and (
            isinstance(self.group_size, bool)
            or not isinstance(self.group_size, int)
            or self.group_size < 1
        ):
            raise QuantizationError(
                f"group_size must be a positive integer or None (one group per tensor), "
                f"got {self.group_size!r}"
            )
        if isinstance(self.kmeans_iters, bool) or not isinstance(self.kmeans_iters, int):
            raise QuantizationError(f"kmeans_iters must be an integer, got {self.kmeans_iters!r}")
        if self.kmeans_iters < 0:
            raise QuantizationError(f"kmeans_iters must be >= 0, got {self.kmeans_iters}")
        if self.kmeans_init not in _KMEANS_INITS:
            raise QuantizationError(
                f"kmeans_init must be 'quantile' or 'random', got {self.kmeans_init!r}"
            )
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise QuantizationError(f"seed must be an integer, got {self.seed!r}")
        if self.granularity not in _GRANULARITIES:
            raise QuantizationError(
                f"granularity must be 'tensor', 'channel' or 'group', got {self.granularity!r}"
            )
        if self.method == "uniform":
            self._check_uniform()

    def _check_uniform(self) -> None:
        if self.granularity == "group" and self.group_size is None:
            raise QuantizationError(
                "granularity='group' needs group_size (weights per group, e.g. 64)"
            )
        if self.granularity != "group" and self.group_size is not None:
            raise QuantizationError(
                f"group_size={self.group_size} only applies with granularity='group' for "
                f"uniform quantization (got granularity={self.granularity!r}); "
                "set granularity='group' or group_size=None"
            )
        if self.symmetric:
            low = [("bits", self.bits)] if self.bits < 2 else []
            low += [(f"module_bits[{p!r}]", b) for p, b in self.module_bits.items() if b < 2]
            if low:
                where, value = low[0]
                raise QuantizationError(
                    f"{where}={value}: symmetric uniform quantization needs at least 2 bits; "
                    "use symmetric=False or method='kmeans' for 1 bit"
                )

    # ------------------------------------------------------------------ queries

    @property
    def enabled(self) -> bool:
        """False for ``method="none"``."""
        return self.method != "none"

    def bits_for(self, name: str) -> int:
        """Bits of the module called ``name``: the first matching ``module_bits`` entry, else ``bits``."""
        for pattern, bits in self.module_bits.items():
            if re.search(pattern, name):
                return bits
        return self.bits

    def is_head(self, name: str) -> bool:
        """Whether ``name`` matches :attr:`head_pattern`."""
        return re.search(self.head_pattern, name) is not None

    def selects_name(self, name: str) -> bool:
        """The name-based part of module selection (head, include, exclude)."""
        if not self.quantize_head and self.is_head(name):
            return False
        if self.include is not None and not any(re.search(p, name) for p in self.include):
            return False
        return not any(re.search(p, name) for p in self.exclude)

    def uniform_group_size(self, row_len: int) -> int | None:
        """Group size the uniform quantizer uses for rows of ``row_len`` weights."""
        if self.granularity == "tensor":
            return None
        if self.granularity == "channel":
            return max(1, row_len)
        return self.group_size

    # ------------------------------------------------------------------ (de)serialisation

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready copy."""
        data = asdict(self)
        data["module_bits"] = dict(self.module_bits)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QuantSpec:
        """Build from :meth:`to_dict` output; unknown keys are an error naming them."""
        if not isinstance(data, dict):
            raise QuantizationError(f"a QuantSpec is built from a dict, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise QuantizationError(
                f"unknown QuantSpec field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        return cls(**data)
