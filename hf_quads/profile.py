"""Measure a speech model: parameters, bytes on disk, theoretical quantized size and GMACs.

These are the yardsticks the QUADS paper reports (model size in MB, GMACs at the
input window) and that hf-quads checks its own checkpoints against. Everything
here is a pure function of a model (or a saved model directory); the
``hf-quads profile`` command only prints what :func:`profile_model_dir` returns.

* :func:`count_parameters` — total, trainable and per module type.
* :func:`disk_usage` — bytes of a saved model directory, and of its weight files.
* :func:`theoretical_size` — bytes the model would take with the weights of its
  quantizable layers stored at ``bits`` bits, plus codebook or scale overhead.
* :func:`count_macs` — multiply-accumulates of one forward pass, counted with
  :class:`torch.utils.flop_counter.FlopCounterMode` on an eager-attention copy of
  the model placed on the meta device (no weights allocated, nothing computed).
* :func:`profile_model` / :func:`profile_model_dir` — all of the above in a
  :class:`ModelProfile` with a readable ``format()`` and a JSON-ready ``to_dict()``.

Sizes are shown in MiB (2**20 bytes): the QUADS paper's "MB" figures match MiB
(Whisper-base encoder: 19.8 M trainable parameters x 4 bytes = 75.6 MiB).
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import json
import logging
import math
import os
import stat
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from .errors import HfQuadsError

__all__ = [
    "DEFAULT_FRAMES_PER_SECOND",
    "DEFAULT_QUANTIZABLE_TYPES",
    "DEFAULT_SAMPLING_RATE",
    "DEFAULT_SECONDS",
    "WEIGHT_SUFFIXES",
    "DiskUsage",
    "MacCount",
    "ModelProfile",
    "ParameterCount",
    "ProfileError",
    "TheoreticalSize",
    "count_macs",
    "count_parameters",
    "disk_usage",
    "dummy_inputs",
    "load_model_dir",
    "profile_model",
    "profile_model_dir",
    "theoretical_bytes",
    "theoretical_size",
]

#: File name endings counted as weight files by :func:`disk_usage`.
WEIGHT_SUFFIXES: tuple[str, ...] = (".safetensors", ".bin")
#: Module types whose ``weight`` :func:`theoretical_size` stores at ``bits`` bits by default.
DEFAULT_QUANTIZABLE_TYPES: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv1d, nn.Conv2d)
#: Log-mel frames per second of audio (Whisper: hop 160 at 16 kHz).
DEFAULT_FRAMES_PER_SECOND: float = 100.0
#: Waveform sampling rate used for ``input_values`` models when none is given.
DEFAULT_SAMPLING_RATE: int = 16_000
#: Duration counted for models without a fixed input window (wav2vec2, HuBERT, ...).
DEFAULT_SECONDS: float = 1.0

Overhead = Literal["codebook", "scales", "none"]
_MIB = 2**20
logger = logging.getLogger(__name__)


class ProfileError(HfQuadsError, ValueError):
    """A model or model directory cannot be profiled as asked (the message says why)."""


# --------------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class ParameterCount:
    """Parameter counts of a model: each tensor counted once, under the module owning it."""

    total: int
    trainable: int
    by_type: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready copy."""
        return {"total": self.total, "trainable": self.trainable, "by_type": dict(self.by_type)}


def _owner_type_name(module: nn.Module, owner: nn.Module | None) -> str:
    # Weight norm and other parametrizations keep the original tensors in a
    # ParametrizationList two levels below the module they belong to.
    from torch.nn.utils import parametrize

    if isinstance(module, parametrize.ParametrizationList) and owner is not None:
        return parametrize.type_before_parametrizations(owner).__name__
    return parametrize.type_before_parametrizations(module).__name__


def count_parameters(model: nn.Module) -> ParameterCount:
    """Count the parameters of ``model``: total, trainable, and per type of owning module.

    Each parameter is counted under the module that holds it directly (a Linear's
    ``weight`` and ``bias`` under ``"Linear"``); weight-normed tensors are counted
    under the parametrized module (``"Conv1d"``, not ``"ParametrizationList"``).
    Shared (tied) parameters are counted once, under the first module that owns them
    in ``named_modules()`` order. Works on meta-device models too.
    """
    seen: set[int] = set()
    by_type: dict[str, int] = {}
    total = trainable = 0
    # (module, parent, grandparent), walked depth first in registration order; the
    # grandparent of a ParametrizationList is the module its tensors belong to.
    stack: list[tuple[nn.Module, nn.Module | None, nn.Module | None]] = [(model, None, None)]
    visited_modules: set[int] = set()
    while stack:
        module, parent, grandparent = stack.pop()
        if id(module) in visited_modules:
            continue
        visited_modules.add(id(module))
        for param in module._parameters.values():
            if param is None or id(param) in seen:
                continue
            seen.add(id(param))
            n = param.numel()
            total += n
            if param.requires_grad:
                trainable += n
            name = _owner_type_name(module, grandparent)
            by_type[name] = by_type.get(name, 0) + n
        children = [c for c in module._modules.values() if c is not None]
        stack.extend((child, module, parent) for child in reversed(children))
    ordered = dict(sorted(by_type.items(), key=lambda item: (-item[1], item[0])))
    return ParameterCount(total=total, trainable=trainable, by_type=ordered)


# --------------------------------------------------------------------------- disk


@dataclass(frozen=True)
class DiskUsage:
    """Bytes taken by a saved model directory (all regular files, and the weight files)."""

    path: str
    total_bytes: int
    weight_bytes: int
    num_files: int
    num_weight_files: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready copy."""
        return asdict(self)


def disk_usage(path: str | os.PathLike[str], *, recursive: bool = True) -> DiskUsage:
    """Sum the sizes of the regular files under ``path`` (recursively, or its own files only).

    ``recursive=False`` counts only the files directly in ``path``: a model's own
    weights, without the ``checkpoint-*`` or ``onnx/`` folders a training run or an
    export may have left beside them.

    ``weight_bytes`` is the part in files ending with :data:`WEIGHT_SUFFIXES`
    (``*.safetensors``, ``*.bin``). Symbolic links to files are followed (a Hub
    cache snapshot is made of links to blobs); links to directories are not.
    Raises :class:`ProfileError` when ``path`` is missing or not a directory.
    """
    root = Path(path)
    if not root.exists():
        raise ProfileError(f"model directory not found: {root}")
    if not root.is_dir():
        raise ProfileError(f"not a directory: {root} (expected a saved model directory)")
    total = weights = files = weight_files = 0
    for dirpath, dirnames, filenames in os.walk(root):
        if not recursive:
            dirnames.clear()
        for name in filenames:
            try:
                info = os.stat(os.path.join(dirpath, name))  # follows links to files
            except OSError:  # dangling link
                continue
            if not stat.S_ISREG(info.st_mode):
                continue
            total += info.st_size
            files += 1
            if name.endswith(WEIGHT_SUFFIXES):
                weights += info.st_size
                weight_files += 1
    return DiskUsage(str(root), total, weights, files, weight_files)


# --------------------------------------------------------------------------- theoretical size


@dataclass(frozen=True)
class TheoreticalSize:
    """Bytes a model would take with its quantizable weights stored at ``bits`` bits.

    ``total_bytes = quantized_bytes + overhead_bytes + other_bytes``.
    """

    bits: int
    overhead: str
    total_bytes: int
    quantized_bytes: int  # packed ``bits``-bit payload of the quantized tensors
    overhead_bytes: int  # their codebooks, or scales (+ zero points)
    other_bytes: int  # every other tensor at its own dtype size
    quantized_params: int
    quantized_tensors: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready copy."""
        return asdict(self)


def _name_matches(name: str, patterns: Collection[str]) -> bool:
    dotted = f".{name}."
    return any(f".{p}." in dotted for p in patterns if p)


def _state_tensors(model: nn.Module, include_buffers: bool) -> Iterator[torch.Tensor]:
    """Unique parameters, then unique persistent buffers (what ``state_dict`` saves)."""
    seen: set[int] = set()
    for param in model.parameters():  # parameters() already drops tied duplicates
        if id(param) not in seen:
            seen.add(id(param))
            yield param
    if not include_buffers:
        return
    for module in model.modules():
        skip = getattr(module, "_non_persistent_buffers_set", set())
        for name, buf in module._buffers.items():
            if buf is not None and name not in skip and id(buf) not in seen:
                seen.add(id(buf))
                yield buf


def theoretical_size(
    model: nn.Module,
    bits: int,
    *,
    overhead: Overhead = "codebook",
    include_embeddings: bool = False,
    module_types: Sequence[type[nn.Module]] | None = None,
    exclude_modules: Collection[str] = (),
    group_size: int | None = None,
    zero_point: bool = False,
    overhead_item_bytes: int = 4,
    include_buffers: bool = True,
) -> TheoreticalSize:
    """Compute the size of ``model`` if its quantizable weights took ``bits`` bits each.

    The yardstick on-disk quantized checkpoints are compared with.

    Quantized tensors: the ``weight`` parameter held directly by every module of
    ``module_types`` (default :data:`DEFAULT_QUANTIZABLE_TYPES`: ``nn.Linear``,
    ``nn.Conv1d``, ``nn.Conv2d``, subclasses included), plus ``nn.Embedding`` when
    ``include_embeddings``; modules named in ``exclude_modules`` (a module name from
    ``named_modules()`` or any whole dotted part of one: ``"classifier"``,
    ``"encoder.conv1"``, ``"layers.0"``; everything under it too) are left alone.
    A weight under a parametrization (weight norm) is not a direct parameter and
    stays unquantized. A tensor shared by several modules is counted once, and
    quantized if any of its owners qualifies. A tensor whose dtype already has
    ``bits`` bits or fewer (``bits=32`` on float32) is kept as it is, without
    overhead, so ``theoretical_size(model, 32)`` is the float32 model's own size.

    Per quantized tensor of ``n`` elements and ``rows = weight.shape[0]``
    (output channels; embedding rows):

    * payload ``ceil(n * bits / 8)`` bytes (a packed bit stream per tensor);
    * ``overhead="codebook"`` (k-means, QUADS): ``2**bits`` centroids of
      ``overhead_item_bytes`` (fp32: 4) bytes;
    * ``overhead="scales"`` (uniform quantization): one scale per output channel
      (``group_size=None``) or per group of ``group_size`` consecutive elements
      of a row (``rows * ceil((n / rows) / group_size)`` groups), each
      ``overhead_item_bytes`` bytes, twice that with ``zero_point`` (an fp32 zero
      point beside each scale);
    * ``overhead="none"``: payload only.

    Everything else (biases, norms, unquantized weights and, with
    ``include_buffers``, the persistent buffers ``state_dict`` saves) counts at
    ``numel * element_size``. Works on meta-device models.
    """
    if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 64:
        raise ValueError(f"bits must be an integer from 1 to 64, got {bits!r}")
    if overhead not in ("codebook", "scales", "none"):
        raise ValueError(f"overhead must be 'codebook', 'scales' or 'none', got {overhead!r}")
    if group_size is not None and (isinstance(group_size, bool) or group_size < 1):
        raise ValueError(f"group_size must be a positive integer or None, got {group_size!r}")
    if overhead_item_bytes < 0:
        raise ValueError(f"overhead_item_bytes must be >= 0, got {overhead_item_bytes!r}")
    types = tuple(DEFAULT_QUANTIZABLE_TYPES if module_types is None else module_types)
    if include_embeddings:
        types += (nn.Embedding,)
    quantizable: set[int] = set()
    for name, module in model.named_modules(remove_duplicate=False):
        if isinstance(module, types) and not _name_matches(name, exclude_modules):
            weight = module._parameters.get("weight")
            if weight is not None:
                quantizable.add(id(weight))

    payload = extra = other = n_params = n_tensors = 0
    for tensor in _state_tensors(model, include_buffers):
        numel = tensor.numel()
        item_bits = tensor.element_size() * 8
        if id(tensor) not in quantizable or bits >= item_bits:
            other += numel * tensor.element_size()
            continue
        n_tensors += 1
        n_params += numel
        payload += math.ceil(numel * bits / 8)
        if overhead == "codebook":
            extra += (2**bits) * overhead_item_bytes
        elif overhead == "scales":
            rows = tensor.shape[0] if tensor.dim() >= 2 else 1
            row_len = numel // rows if rows else 0
            groups_per_row = 1 if group_size is None else math.ceil(row_len / group_size)
            per_group = overhead_item_bytes * (2 if zero_point else 1)
            extra += rows * groups_per_row * per_group
    return TheoreticalSize(
        bits=bits,
        overhead=overhead,
        total_bytes=payload + extra + other,
        quantized_bytes=payload,
        overhead_bytes=extra,
        other_bytes=other,
        quantized_params=n_params,
        quantized_tensors=n_tensors,
    )


def theoretical_bytes(model: nn.Module, bits: int, **options: Any) -> int:
    """``theoretical_size(model, bits, **options).total_bytes``: the size as one number."""
    return theoretical_size(model, bits, **options).total_bytes


# --------------------------------------------------------------------------- MACs


@dataclass(frozen=True)
class MacCount:
    """Multiply-accumulates of one forward pass (FlopCounterMode FLOPs / 2)."""

    macs: int
    by_operator: dict[str, int]
    seconds: float | None
    inputs: dict[str, list[int]]  # shape of each tensor input
    counted: str  # what was run: "model", "encoder", or "model (encoder + N decoder tokens)"
    device: str  # "meta" (shapes only) or the device of the real weights

    @property
    def gmacs(self) -> float:
        """MACs / 1e9."""
        return self.macs / 1e9

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready copy."""
        return {
            "macs": self.macs,
            "gmacs": self.gmacs,
            "by_operator": dict(self.by_operator),
            "seconds": self.seconds,
            "inputs": {k: list(v) for k, v in self.inputs.items()},
            "counted": self.counted,
            "device": self.device,
        }


def _configs(model: nn.Module) -> list[Any]:
    """Every transformers config reachable from the model's modules, sub-configs included."""
    try:
        from transformers import PretrainedConfig
    except ImportError:  # pragma: no cover - transformers is a dependency
        return []
    found: list[Any] = []
    seen: set[int] = set()

    def visit(cfg: Any) -> None:
        if id(cfg) in seen:
            return
        seen.add(id(cfg))
        found.append(cfg)
        for value in list(vars(cfg).values()):
            if isinstance(value, PretrainedConfig):
                visit(value)

    for module in model.modules():
        cfg = getattr(module, "config", None)
        if isinstance(cfg, PretrainedConfig):
            visit(cfg)
    return found


@contextlib.contextmanager
def _eager_attention(model: nn.Module) -> Iterator[None]:
    """Switch every config of ``model`` to eager attention; restore them afterwards.

    transformers picks the attention function from ``config._attn_implementation``
    at forward time (4.57 and 5.x alike), so flipping the attribute on the configs
    the modules hold is enough. The internal field is restored directly so that
    the setter's propagation to sub-configs cannot leave anything changed.
    """
    saved: list[tuple[Any, Any]] = []
    try:
        for cfg in _configs(model):
            saved.append((cfg, cfg.__dict__.get("_attn_implementation_internal")))
            cfg._attn_implementation_internal = "eager"
        yield
    finally:
        for cfg, value in saved:
            cfg._attn_implementation_internal = value


def _meta_copy(model: nn.Module) -> nn.Module:
    """Deep copy of ``model`` with every parameter and buffer replaced by a meta tensor.

    Keeps the module structure exactly (pruned layers, custom heads, wrappers)
    without allocating or copying any weight.
    """
    memo: dict[int, Any] = {}
    tensors = [t for _, t in model.named_parameters(remove_duplicate=False)]
    tensors += [t for _, t in model.named_buffers(remove_duplicate=False)]
    for tensor in tensors:
        if id(tensor) in memo:
            continue
        meta = torch.empty_like(tensor, device="meta")
        if isinstance(tensor, nn.Parameter):
            meta = nn.Parameter(meta, requires_grad=tensor.requires_grad)
        memo[id(tensor)] = meta
    for module in model.modules():  # parametrization caches and other tensors in modules
        for tensor in module.__dict__.values():
            if isinstance(tensor, torch.Tensor) and id(tensor) not in memo:
                memo[id(tensor)] = torch.empty_like(tensor, device="meta")
    return copy.deepcopy(model, memo)


def _float_dtype(model: nn.Module) -> torch.dtype:
    for tensor in [*model.parameters(), *model.buffers()]:
        if tensor.is_floating_point():
            return tensor.dtype
    return torch.get_default_dtype()


def _device(model: nn.Module) -> torch.device:
    for tensor in [*model.parameters(), *model.buffers()]:
        return tensor.device
    return torch.device("cpu")


def _is_seq2seq(model: nn.Module) -> bool:
    """An encoder-decoder whose forward needs decoder inputs (not Whisper's classifier)."""
    if not callable(getattr(model, "get_encoder", None)):
        return False
    try:
        params = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False
    return "decoder_input_ids" in params


def _whisper_like(config: Any) -> bool:
    return getattr(config, "model_type", None) == "whisper" or (
        hasattr(config, "max_source_positions") and hasattr(config, "num_mel_bins")
    )


def _plan(
    model: nn.Module,
    seconds: float | None,
    decoder_tokens: int | None,
    sampling_rate: int | None,
    frames_per_second: float,
    device: torch.device,
) -> tuple[nn.Module, dict[str, Any], float, str]:
    """Pick the module to run and build its dummy inputs: (module, inputs, seconds, what)."""
    config = getattr(model, "config", None)
    main_input = getattr(model, "main_input_name", None)
    dtype = _float_dtype(model)
    kind = type(model).__name__
    if config is None or main_input not in ("input_features", "input_values"):
        raise ProfileError(
            f"cannot build dummy inputs for {kind} (main input {main_input!r}); "
            "pass an explicit inputs dict"
        )
    if seconds is not None and not (isinstance(seconds, (int, float)) and seconds > 0):
        raise ProfileError(f"seconds must be a positive number, got {seconds!r}")

    if main_input == "input_features":
        if not _whisper_like(config):
            raise ProfileError(
                f"cannot build dummy log-mel inputs for {kind} (model_type "
                f"{getattr(config, 'model_type', None)!r}); pass an explicit inputs dict"
            )
        frames = 2 * int(config.max_source_positions)
        window = frames / frames_per_second
        if seconds is not None and round(seconds * frames_per_second) != frames:
            raise ProfileError(
                f"{kind} takes a fixed window of exactly {frames} log-mel frames "
                f"(2 * max_source_positions = 2 * {config.max_source_positions}), i.e. "
                f"{window:g} s at {frames_per_second:g} frames/s; it cannot be profiled at "
                f"{seconds:g} s (leave seconds unset to use the window)"
            )
        inputs: dict[str, Any] = {
            "input_features": torch.zeros(
                1, int(config.num_mel_bins), frames, dtype=dtype, device=device
            )
        }
        seconds = window
    else:
        if not hasattr(config, "conv_kernel"):
            raise ProfileError(
                f"cannot build a dummy waveform for {kind} (model_type "
                f"{getattr(config, 'model_type', None)!r}); pass an explicit inputs dict"
            )
        seconds = DEFAULT_SECONDS if seconds is None else float(seconds)
        rate = sampling_rate or DEFAULT_SAMPLING_RATE
        samples = round(seconds * rate)
        receptive = 1 + sum(
            (k - 1) * math.prod(config.conv_stride[:i]) for i, k in enumerate(config.conv_kernel)
        )
        if samples < receptive:
            raise ProfileError(
                f"{seconds:g} s at {rate} Hz is {samples} samples, shorter than the "
                f"{receptive} samples {kind}'s feature encoder needs for one frame"
            )
        inputs = {"input_values": torch.zeros(1, samples, dtype=dtype, device=device)}

    if not _is_seq2seq(model):
        if decoder_tokens:
            raise ProfileError(f"decoder_tokens given but {kind} has no decoder")
        return model, inputs, seconds, "model"
    if not decoder_tokens:
        return model.get_encoder(), inputs, seconds, "encoder"
    limit = getattr(config, "max_target_positions", None)
    if decoder_tokens < 0 or (limit is not None and decoder_tokens > limit):
        raise ProfileError(
            f"decoder_tokens must be from 0 to max_target_positions={limit}, got {decoder_tokens}"
        )
    start = getattr(config, "decoder_start_token_id", None) or 0
    start = min(int(start), int(getattr(config, "vocab_size", start + 1)) - 1)
    inputs["decoder_input_ids"] = torch.full(
        (1, decoder_tokens), start, dtype=torch.long, device=device
    )
    # An explicit all-ones mask keeps transformers 5.x off its data-dependent
    # packed-sequence check, which cannot run on the meta device.
    inputs["decoder_attention_mask"] = torch.ones(
        (1, decoder_tokens), dtype=torch.long, device=device
    )
    inputs["use_cache"] = False
    return model, inputs, seconds, f"model (encoder + {decoder_tokens} decoder tokens)"


def dummy_inputs(
    model: nn.Module,
    seconds: float | None = None,
    *,
    decoder_tokens: int | None = None,
    sampling_rate: int | None = None,
    frames_per_second: float = DEFAULT_FRAMES_PER_SECOND,
) -> dict[str, Any]:
    """Zero inputs for one forward pass of ``model`` over ``seconds`` of audio.

    Whisper (``input_features``): ``1 x num_mel_bins x 2*max_source_positions``
    log-mel frames — the encoder accepts no other length, so ``seconds`` must be
    ``None`` or that window (:class:`ProfileError` otherwise). Wav2Vec2, HuBERT and
    other ``input_values`` models with a convolutional feature encoder: a
    ``1 x round(seconds * sampling_rate)`` waveform (default
    :data:`DEFAULT_SECONDS` at :data:`DEFAULT_SAMPLING_RATE`). Encoder-decoder
    models get ``decoder_input_ids`` of ``decoder_tokens`` tokens when asked.
    Tensors are on the model's device, floats in its dtype.
    """
    _, inputs, _, _ = _plan(
        model, seconds, decoder_tokens, sampling_rate, frames_per_second, _device(model)
    )
    return inputs


def _sdpa_cpu_flops(
    query_shape: Sequence[int],
    key_shape: Sequence[int],
    value_shape: Sequence[int],
    *_: Any,
    **__: Any,
) -> int:
    from torch.utils.flop_counter import sdpa_flop_count

    return sdpa_flop_count(query_shape, key_shape, value_shape)


def _custom_flop_formulas() -> dict[Any, Any]:
    """FLOP formulas FlopCounterMode lacks: the CPU flash-attention SDPA kernel.

    Eager attention makes them unnecessary for transformers models; this covers
    ``F.scaled_dot_product_attention`` called by other code on real CPU tensors
    (on the meta device SDPA decomposes into counted ``bmm``).
    """
    op = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    return {} if op is None else {op: _sdpa_cpu_flops}


def _run_counted(module: nn.Module, inputs: Mapping[str, Any]) -> tuple[int, dict[str, int]]:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False, custom_mapping=_custom_flop_formulas())
    with counter, torch.no_grad():
        module(**inputs)
    by_op = {
        str(op): int(flops) // 2
        for op, flops in counter.get_flop_counts().get("Global", {}).items()
    }
    return int(counter.get_total_flops()) // 2, by_op


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training


def _to_meta(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return torch.empty_like(value, device="meta")
    return value


def count_macs(
    model: nn.Module,
    inputs: Mapping[str, Any] | None = None,
    *,
    seconds: float | None = None,
    decoder_tokens: int | None = None,
    sampling_rate: int | None = None,
    frames_per_second: float = DEFAULT_FRAMES_PER_SECOND,
    use_meta: bool = True,
) -> MacCount:
    """Count the multiply-accumulates of one forward pass of ``model``.

    Counted with :class:`torch.utils.flop_counter.FlopCounterMode`, which counts
    matrix products and convolutions (``mm``, ``addmm``, ``bmm``, ``baddbmm``,
    ``convolution``, fused SDPA kernels) at 2 FLOPs per MAC, so MACs = FLOPs / 2.
    Element-wise work (biases, norms, activations, softmax, pooling) is not counted,
    as in the papers' GMAC figures.

    Attention is switched to eager for the count (``config._attn_implementation``
    set on every config the copy holds): the CPU SDPA kernel is invisible to
    FlopCounterMode. By default the count runs on a meta-device deep copy of the
    model (same structure, no weights allocated, nothing computed: a
    Whisper-large-sized model counts in about a second); if the forward pass fails
    on meta (data-dependent code, quantized weight types), or ``use_meta=False``,
    it runs on the real weights in eval mode under ``no_grad``, with the configs
    switched temporarily and restored afterwards.

    Inputs: ``inputs`` as given (a dict of forward keyword arguments), or dummy
    inputs built by :func:`dummy_inputs` from ``seconds``. For encoder-decoder
    models (``WhisperModel``, ``WhisperForConditionalGeneration``) only the encoder
    is counted unless ``decoder_tokens`` is given; then the whole model runs one
    teacher-forced pass over that many decoder tokens (no KV cache), which includes
    the output projection onto the vocabulary and full ``tokens x tokens``
    self-attention — an upper bound on the same tokens generated one at a time with
    a cache (whose attention is about half of that).
    """
    if use_meta:
        try:
            target = _meta_copy(model)
            return _count(
                target, inputs, seconds, decoder_tokens, sampling_rate, frames_per_second, "meta"
            )
        except ProfileError:
            raise
        except Exception as err:  # the meta device cannot run this model: use real weights
            logger.info("counting MACs on the real weights: meta-device pass failed: %r", err)
    return _count(model, inputs, seconds, decoder_tokens, sampling_rate, frames_per_second, None)


def _count(
    model: nn.Module,
    inputs: Mapping[str, Any] | None,
    seconds: float | None,
    decoder_tokens: int | None,
    sampling_rate: int | None,
    frames_per_second: float,
    meta: str | None,
) -> MacCount:
    device = torch.device("meta") if meta else _device(model)
    if inputs is None:
        module, run_inputs, seconds, what = _plan(
            model, seconds, decoder_tokens, sampling_rate, frames_per_second, device
        )
    else:
        module, what = model, "model"
        run_inputs = {k: _to_meta(v) for k, v in inputs.items()} if meta else dict(inputs)
    with _eval_mode(model), _eager_attention(model):
        macs, by_op = _run_counted(module, run_inputs)
    shapes = {k: list(v.shape) for k, v in run_inputs.items() if isinstance(v, torch.Tensor)}
    return MacCount(
        macs=macs,
        by_operator=by_op,
        seconds=seconds,
        inputs=shapes,
        counted=what,
        device=str(device),
    )


# --------------------------------------------------------------------------- report


def _mib(n: int) -> str:
    return f"{n / _MIB:,.3f} MiB"


def _files(n: int) -> str:
    return f"{n} file" if n == 1 else f"{n} files"


@dataclass
class ModelProfile:
    """Everything :func:`profile_model` measured, with ``format()`` and ``to_dict()``."""

    name: str
    architecture: str
    dtype: str
    parameters: ParameterCount
    sizes: list[TheoreticalSize] = field(default_factory=list)
    disk: DiskUsage | None = None
    macs: MacCount | None = None
    macs_error: str | None = None
    size_options: dict[str, Any] = field(default_factory=dict)

    def format(self) -> str:
        """A small human-readable table."""
        p = self.parameters
        rows: list[tuple[str, str]] = [
            ("model", self.name),
            ("architecture", f"{self.architecture} ({self.dtype})"),
            ("parameters", f"{p.total:,} (trainable {p.trainable:,})"),
        ]
        rows += [(f"  {name}", f"{n:,}") for name, n in p.by_type.items()]
        if self.disk is not None:
            d = self.disk
            rows.append(
                ("on disk", f"{_mib(d.total_bytes)} ({d.total_bytes:,} B, {_files(d.num_files)})")
            )
            rows.append(
                (
                    "  weight files",
                    f"{_mib(d.weight_bytes)} ({d.weight_bytes:,} B, {_files(d.num_weight_files)})",
                )
            )
        if self.sizes:
            opts = self.size_options
            how = {
                "codebook": "k-means codebook of 2^bits fp32 centroids per tensor",
                "scales": "fp32 scale per "
                + (f"group of {opts.get('group_size')}" if opts.get("group_size") else "channel")
                + (" + zero point" if opts.get("zero_point") else ""),
                "none": "no codebook/scale overhead",
            }[self.sizes[0].overhead]
            layers = "Linear/Conv" + ("/Embedding" if opts.get("include_embeddings") else "")
            rows.append(("theoretical size", f"{layers} weights at b bits, {how}"))
            for s in self.sizes:
                rows.append((f"  {s.bits} bits", f"{_mib(s.total_bytes)} ({s.total_bytes:,} B)"))
        if self.macs is not None:
            m = self.macs
            shapes = ", ".join(f"{k} {'x'.join(map(str, v))}" for k, v in m.inputs.items())
            at = f"at {m.seconds:g} s, " if m.seconds is not None else ""
            rows.append(("GMACs", f"{m.gmacs:,.4f} ({m.macs:,} MACs)"))
            rows.append(("  input", f"{at}{shapes}; counted: {m.counted}"))
        elif self.macs_error:
            rows.append(("GMACs", f"not counted: {self.macs_error}"))
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)

    def __str__(self) -> str:
        return self.format()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready nested dict (``json.dumps`` works on it as is)."""
        return {
            "name": self.name,
            "architecture": self.architecture,
            "dtype": self.dtype,
            "parameters": self.parameters.to_dict(),
            "disk": None if self.disk is None else self.disk.to_dict(),
            "theoretical_sizes": [s.to_dict() for s in self.sizes],
            "size_options": dict(self.size_options),
            "macs": None if self.macs is None else self.macs.to_dict(),
            "macs_error": self.macs_error,
        }

    def to_json(self, **kwargs: Any) -> str:
        """``json.dumps(self.to_dict(), indent=2)``."""
        kwargs.setdefault("indent", 2)
        return json.dumps(self.to_dict(), **kwargs)


def profile_model(
    model: nn.Module,
    *,
    seconds: float | None = None,
    bits: Sequence[int] = (32, 8, 4, 2),
    overhead: Overhead = "codebook",
    include_embeddings: bool = False,
    group_size: int | None = None,
    zero_point: bool = False,
    decoder_tokens: int | None = None,
    inputs: Mapping[str, Any] | None = None,
    sampling_rate: int | None = None,
    frames_per_second: float = DEFAULT_FRAMES_PER_SECOND,
    macs: bool = True,
    name: str | None = None,
    disk: DiskUsage | None = None,
) -> ModelProfile:
    """Profile an in-memory model: parameters, theoretical sizes at ``bits``, GMACs.

    Size options go to :func:`theoretical_size`, MAC options to :func:`count_macs`.
    When dummy inputs cannot be built for an architecture this module does not
    know, the report keeps the reason in ``macs_error`` instead of failing; an
    impossible request (``seconds`` other than Whisper's window, ``decoder_tokens``
    on a model without a decoder) raises :class:`ProfileError`.
    """
    size_options: dict[str, Any] = {
        "overhead": overhead,
        "include_embeddings": include_embeddings,
        "group_size": group_size,
        "zero_point": zero_point,
    }
    sizes = [theoretical_size(model, b, **size_options) for b in bits]
    mac_count: MacCount | None = None
    mac_error: str | None = None
    if macs:
        try:
            mac_count = count_macs(
                model,
                inputs,
                seconds=seconds,
                decoder_tokens=decoder_tokens,
                sampling_rate=sampling_rate,
                frames_per_second=frames_per_second,
            )
        except ProfileError as err:
            if seconds is not None or decoder_tokens or inputs is not None:
                raise
            mac_error = str(err)
    return ModelProfile(
        name=name or type(model).__name__,
        architecture=type(model).__name__,
        dtype=str(_float_dtype(model)).removeprefix("torch."),
        parameters=count_parameters(model),
        sizes=sizes,
        disk=disk,
        macs=mac_count,
        macs_error=mac_error,
        size_options=size_options,
    )


_AUTO_BY_SUFFIX: tuple[tuple[tuple[str, ...], str], ...] = (
    (("ForAudioClassification", "ForSequenceClassification"), "AutoModelForAudioClassification"),
    (("ForConditionalGeneration", "ForSpeechSeq2Seq"), "AutoModelForSpeechSeq2Seq"),
    (("ForCTC",), "AutoModelForCTC"),
)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ProfileError(f"cannot read {path}: {err}") from err
    if not isinstance(data, dict):
        raise ProfileError(f"{path} does not hold a JSON object")
    return data


def load_model_dir(path: str | os.PathLike[str]) -> nn.Module:
    """Load a saved transformers model with the class its ``config.json`` names.

    The class is ``config.json``'s first ``architectures`` entry when transformers
    has it; otherwise the Auto class its name suggests
    (``...ForAudioClassification``/``...ForSequenceClassification`` ->
    ``AutoModelForAudioClassification``, ``...ForConditionalGeneration`` ->
    ``AutoModelForSpeechSeq2Seq``, ``...ForCTC`` -> ``AutoModelForCTC``, else
    ``AutoModel``). Weights keep their stored dtype (``dtype="auto"``).
    Raises :class:`ProfileError` naming the path when it is not a model directory.
    """
    import transformers

    root = Path(path)
    if not root.is_dir():
        raise ProfileError(
            f"model directory not found: {root}"
            if not root.exists()
            else f"not a directory: {root}"
        )
    config_file = root / "config.json"
    if not config_file.is_file():
        raise ProfileError(f"not a model directory: {root} has no config.json")
    config = _read_json(config_file)
    architectures = config.get("architectures") or []
    arch = architectures[0] if architectures and isinstance(architectures[0], str) else ""
    model_cls: Any = None
    if arch:
        with contextlib.suppress(Exception):
            model_cls = getattr(transformers, arch)
    if model_cls is None:
        auto = next(
            (name for suffixes, name in _AUTO_BY_SUFFIX if arch.endswith(suffixes)), "AutoModel"
        )
        model_cls = getattr(transformers, auto)
    from transformers.utils import logging as hf_logging

    progress = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # 5.x prints a "Loading weights" bar on stderr
    try:
        model = model_cls.from_pretrained(str(root), dtype="auto")
    except Exception as err:
        raise ProfileError(
            f"cannot load a model from {root} with {model_cls.__name__}: {err}"
        ) from err
    finally:
        if progress:
            hf_logging.enable_progress_bar()
    return model.eval()


def profile_model_dir(
    path: str | os.PathLike[str],
    *,
    seconds: float | None = None,
    bits: Sequence[int] = (32, 8, 4, 2),
    overhead: Overhead = "codebook",
    include_embeddings: bool = False,
    group_size: int | None = None,
    zero_point: bool = False,
    decoder_tokens: int | None = None,
    macs: bool = True,
) -> ModelProfile:
    """Profile a saved model directory: :func:`profile_model` plus its bytes on disk.

    The model is loaded with :func:`load_model_dir`. The waveform rate and the
    log-mel frame rate come from ``preprocessor_config.json`` when it has
    ``sampling_rate`` (and ``hop_length``), else 16 kHz and 100 frames/s.
    """
    from .quant import dequantize

    usage = disk_usage(path)
    # A packed low-bit checkpoint counts as the model its codes stand for (its parameters,
    # MACs, theoretical sizes); its bytes on disk are what ``usage`` measured.
    model = dequantize(load_model_dir(path))
    rate: int | None = None
    fps = DEFAULT_FRAMES_PER_SECOND
    preprocessor = Path(path) / "preprocessor_config.json"
    if preprocessor.is_file():
        pre = _read_json(preprocessor)
        if isinstance(pre.get("sampling_rate"), int) and pre["sampling_rate"] > 0:
            rate = pre["sampling_rate"]
            hop = pre.get("hop_length")
            if isinstance(hop, int) and hop > 0:
                fps = rate / hop
    return profile_model(
        model,
        seconds=seconds,
        bits=bits,
        overhead=overhead,
        include_embeddings=include_embeddings,
        group_size=group_size,
        zero_point=zero_point,
        decoder_tokens=decoder_tokens,
        sampling_rate=rate,
        frames_per_second=fps,
        macs=macs,
        name=str(path),
        disk=usage,
    )
