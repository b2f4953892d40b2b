"""``DistillQuantTrainer``: QUADS (joint distillation and quantization) as a drop-in Trainer.

Swap ``Trainer`` for ``DistillQuantTrainer``, pass a teacher and a
:class:`~hf_quads.DistillQuantConfig`, and the student is distilled from the frozen
teacher and quantized in the phases the config's ``schedule`` lays out. The maths
lives elsewhere (``hf_quads.distill`` for losses, ``hf_quads.quant`` for
quantizers, ``hf_quads.schedule`` for the plan); this module only wires it into
the Trainer's loop, logging and saving.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
import logging
import os
from collections import defaultdict
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch import nn
from transformers import PreTrainedModel, Trainer, TrainerCallback
from transformers.trainer import TRAINING_ARGS_NAME

from .atomic import atomic_directory
from .config import DistillQuantConfig
from .distill import (
    FeatureProjector,
    TeacherCache,
    combine_losses,
    feature_loss,
    frame_attention_mask,
    hidden_size_of,
    logit_kd_loss,
    match_dims,
    pool_hidden_states,
    teacher_hash,
)
from .errors import HfQuadsError
from .quant import (
    QuantSpec,
    centroid_loss,
    qat_modules,
    quantize_,
    refit_,
    save_quantized,
    set_quantization_enabled,
    update_,
)
from .quant.checkpoint import WEIGHT_FILE_PATTERNS

logger = logging.getLogger(__name__)

PHASE_IDS: dict[str, int] = {"distill": 0, "quant": 1, "joint": 2}
#: Dataset column that carries row indices to the teacher cache.
ROW_INDEX_COLUMN = "hf_quads_row"
#: Attribute under which the feature projector rides on the student while training.
PROJECTOR_ATTR = "hf_quads_feature_projector"
#: Output key under which the student's (projected) pooled features come out of its forward.
STUDENT_FEATURES_KEY = "hf_quads_student_features"


class TeacherStudentMismatchError(HfQuadsError, ValueError):
    """Teacher and student cannot be distilled together (labels, vocabulary or inputs differ)."""


@functools.cache
def _with_features_field(output_cls: type) -> type:
    """``output_cls`` plus a ``STUDENT_FEATURES_KEY`` field (a registered pytree node, for DDP)."""
    namespace = {
        "__annotations__": {STUDENT_FEATURES_KEY: "torch.FloatTensor | None"},
        STUDENT_FEATURES_KEY: None,
        "__module__": __name__,
    }
    return dataclasses.dataclass(
        type(f"{output_cls.__name__}WithFeatures", (output_cls,), namespace)
    )


def _is_seq2seq(model: nn.Module) -> bool:
    return bool(getattr(getattr(model, "config", None), "is_encoder_decoder", False))


def _is_classifier(model: nn.Module) -> bool:
    name = type(model).__name__
    return name.endswith(("ForSequenceClassification", "ForAudioClassification"))


def _output_vocab(model: nn.Module) -> int | None:
    get = getattr(model, "get_output_embeddings", None)
    head = get() if callable(get) else None
    return getattr(head, "out_features", None)


def check_teacher_student(teacher: nn.Module, student: nn.Module) -> None:
    """Raise :class:`TeacherStudentMismatchError` when the pair cannot be distilled.

    Classifiers must share their label set (count and, where both name them, names);
    generative models their output vocabulary; both the main input and, for log-mel
    inputs, the number of mel bins.
    """
    t_cfg, s_cfg = teacher.config, student.config
    problems = []
    if getattr(teacher, "main_input_name", None) != getattr(student, "main_input_name", None):
        problems.append(
            f"teacher reads {teacher.main_input_name!r} but student reads {student.main_input_name!r}"
        )
    t_mels, s_mels = getattr(t_cfg, "num_mel_bins", None), getattr(s_cfg, "num_mel_bins", None)
    if t_mels is not None and s_mels is not None and t_mels != s_mels:
        problems.append(
            f"teacher expects {t_mels} mel bins and student {s_mels}: both must read the same "
            "input_features (use feature extractors with the same feature_size)"
        )
    if _is_classifier(student) or _is_classifier(teacher):
        if t_cfg.num_labels != s_cfg.num_labels:
            problems.append(f"teacher has {t_cfg.num_labels} labels, student {s_cfg.num_labels}")
        else:
            t_names, s_names = dict(t_cfg.id2label), dict(s_cfg.id2label)
            default = {i: f"LABEL_{i}" for i in range(s_cfg.num_labels)}
            if t_names != default and s_names != default and t_names != s_names:
                diff = [i for i in sorted(s_names) if t_names.get(i) != s_names[i]][:5]
                problems.append(
                    "teacher and student name their labels differently, e.g. "
                    + ", ".join(f"id {i}: {t_names.get(i)!r} vs {s_names[i]!r}" for i in diff)
                )
    else:
        t_vocab, s_vocab = _output_vocab(teacher), _output_vocab(student)
        if t_vocab is not None and s_vocab is not None and t_vocab != s_vocab:
            problems.append(f"teacher's vocabulary has {t_vocab} entries, student's {s_vocab}")
    if problems:
        raise TeacherStudentMismatchError(
            "teacher and student cannot be distilled together: " + "; ".join(problems)
        )


class QuadsPhaseCallback(TrainerCallback):
    """Switches phases at their first step and updates codebooks after optimizer steps."""

    def __init__(self, trainer: DistillQuantTrainer) -> None:
        self.trainer = trainer

    def on_train_begin(self, args, state, control, **kwargs):
        # On resume, continue from the phase of the last completed step so that a
        # boundary at the resume step is crossed (and refitted) exactly as without
        # the interruption; the codebooks themselves come from the checkpoint.
        last = state.global_step - 1
        self.trainer._current_phase = (
            None if last < 0 else self.trainer.phase_plan.phase_at(last, state.max_steps)
        )
        if self.trainer._current_phase is not None:
            self.trainer._apply_phase(self.trainer._current_phase, entering=False)

    def on_step_begin(self, args, state, control, **kwargs):
        phase = self.trainer.phase_plan.phase_at(state.global_step, state.max_steps)
        if phase != self.trainer._current_phase:
            previous = self.trainer._current_phase
            self.trainer._current_phase = phase
            self.trainer._apply_phase(phase, entering=True)
            self.trainer._phase_switches.append((state.global_step, previous, phase))

    def on_optimizer_step(self, args, state, control, **kwargs):
        if self.trainer._current_phase in ("quant", "joint"):
            update_(self.trainer.model)


class DistillQuantTrainer(Trainer):
    """A ``transformers.Trainer`` that distils a frozen teacher into a quantized student.

    Args:
        model: the student (any ``PreTrainedModel`` for audio classification,
            speech seq2seq or causal LM).
        teacher_model: the teacher as a model, a Hub id / path, or ``None`` to use
            ``args.teacher_model_name_or_path``. It is frozen, kept in eval mode and
            never wrapped for gradients.
        args: a :class:`~hf_quads.DistillQuantConfig`.

    Every other argument is ``Trainer``'s.
    """

    def __init__(
        self,
        model: PreTrainedModel | nn.Module | None = None,
        teacher_model: PreTrainedModel | nn.Module | str | None = None,
        args: DistillQuantConfig | None = None,
        *trainer_args: Any,
        **trainer_kwargs: Any,
    ) -> None:
        if model is None:
            raise ValueError("DistillQuantTrainer needs a student `model`")
        if args is None:
            args = DistillQuantConfig(output_dir="trainer_output")
        if not isinstance(args, DistillQuantConfig):
            raise TypeError(
                f"args must be a DistillQuantConfig (it subclasses TrainingArguments), got "
                f"{type(args).__name__}; build one with the same fields plus the hf-quads ones"
            )
        self.phase_plan = args.phase_plan
        teacher = self._load_teacher(teacher_model, args, model)
        check_teacher_student(teacher, model)
        self.quant_spec = (
            QuantSpec(**args.quant_spec_kwargs()) if args.quant_method != "none" else None
        )
        if self.quant_spec is not None:
            # Before the optimizer exists, so learnable scales are trained with the student.
            quantize_(model, self.quant_spec, step="prepare")
        self._attach_projector(model, teacher, args)
        self._collect_features = False
        self._install_feature_hook(model)
        self._current_phase: str | None = None
        self._phase_switches: list[tuple[int, str | None, str]] = []
        self._quant_fitted = False
        self._loss_terms: dict[str, list[float]] = defaultdict(list)
        self._cache: TeacherCache | None = None

        callbacks = list(trainer_kwargs.pop("callbacks", None) or [])
        super().__init__(model, args, *trainer_args, callbacks=callbacks, **trainer_kwargs)
        self.add_callback(QuadsPhaseCallback(self))
        # Our losses are batch means: let Trainer scale them for gradient accumulation.
        self.model_accepts_loss_kwargs = False
        self.teacher = self._place_teacher(teacher)
        self._teacher_digest: str | None = None
        if args.teacher_cache:
            self._index_train_rows()

    # ------------------------------------------------------------- teacher cache
    def _index_train_rows(self) -> None:
        if not _is_classifier(self.model):
            raise ValueError(
                "teacher_cache supports classification students only: the teacher's logits "
                "for every token of a seq2seq or causal LM would not fit on disk"
            )
        dataset = self.train_dataset
        if dataset is None or not hasattr(dataset, "_fingerprint"):
            raise ValueError("teacher_cache needs train_dataset to be a datasets.Dataset")
        self._dataset_fingerprint = dataset._fingerprint
        self.train_dataset = dataset.add_column(ROW_INDEX_COLUMN, list(range(len(dataset))))

    def _set_signature_columns_if_needed(self) -> None:
        super()._set_signature_columns_if_needed()
        if self.args.teacher_cache and ROW_INDEX_COLUMN not in self._signature_columns:
            self._signature_columns.append(ROW_INDEX_COLUMN)

    def _prepare_teacher_cache(self) -> None:
        """Load the teacher cache for this data and teacher, or build it once (main process first)."""
        if not self.args.teacher_cache or self._cache is not None:
            return
        cache_dir = self.args.teacher_cache_dir or os.path.join(
            self.args.output_dir, "teacher_cache"
        )
        if self._teacher_digest is None:
            self._teacher_digest = teacher_hash(self.accelerator.unwrap_model(self.teacher))
        settings = {
            "features": self.args.alpha > 0,
            "feature_layer": self.args.feature_layer,
            "feature_pooling": self.args.feature_pooling,
            "teacher_dtype": str(self._teacher_dtype()),
        }
        key = TeacherCache.key(self._dataset_fingerprint, self._teacher_digest, settings=settings)
        with self.args.main_process_first(desc="hf-quads teacher cache"):
            cache = TeacherCache.load(cache_dir, key)
            if cache is None:
                want_features = self.args.alpha > 0
                cache = TeacherCache.build(
                    cache_dir,
                    key,
                    len(self.train_dataset),
                    self._cache_batches(),
                    lambda inputs: self._teacher_outputs(inputs, want_features),
                    progress=not self.args.disable_tqdm,
                )
        self._cache = cache

    def _cache_batches(self) -> Iterator[tuple[torch.Tensor, dict[str, Any]]]:
        dataset = self._remove_unused_columns(self.train_dataset, description="teacher cache")
        loader = torch.utils.data.DataLoader(
            dataset,
            batch_size=self.args.per_device_eval_batch_size,
            shuffle=False,
            collate_fn=self.data_collator,
            num_workers=self.args.dataloader_num_workers,
        )
        for batch in loader:
            batch = self._prepare_inputs(batch)
            yield batch.pop(ROW_INDEX_COLUMN), batch

    def train(self, *args: Any, **kwargs: Any):
        """``Trainer.train``, after loading or building the teacher cache when it is on."""
        self._prepare_teacher_cache()
        return super().train(*args, **kwargs)

    # ------------------------------------------------------------------ teacher
    @staticmethod
    def _load_teacher(
        teacher: PreTrainedModel | nn.Module | str | None,
        args: DistillQuantConfig,
        student: nn.Module,
    ) -> nn.Module:
        if teacher is None:
            teacher = args.teacher_model_name_or_path
        if teacher is None:
            raise ValueError(
                "no teacher: pass teacher_model=... to DistillQuantTrainer or set "
                "teacher_model_name_or_path in DistillQuantConfig"
            )
        if isinstance(teacher, str):
            # The student's own class: Whisper-large teaches Whisper-base, and so on. A
            # teacher of another architecture is passed as a model.
            kwargs = dict(args.teacher_model_init_kwargs or {})
            teacher = type(student).from_pretrained(teacher, **kwargs)
        for param in teacher.parameters():
            param.requires_grad_(False)
        return teacher.eval()

    def _teacher_dtype(self) -> torch.dtype:
        if self.args.teacher_dtype == "auto":
            return next(self.model.parameters()).dtype
        return getattr(torch, self.args.teacher_dtype)

    def _place_teacher(self, teacher: nn.Module) -> nn.Module:
        teacher = teacher.to(device=self.args.device, dtype=self._teacher_dtype())
        if self.accelerator.num_processes > 1 and not self.is_deepspeed_enabled:
            teacher = self.accelerator.prepare_model(teacher, evaluation_mode=True)
        return teacher.eval()

    # -------------------------------------------------------------- projector
    @staticmethod
    def _attach_projector(student: nn.Module, teacher: nn.Module, args: DistillQuantConfig) -> None:
        """A learned student->teacher map for the feature loss when widths differ.

        It rides on the student while training, so DDP synchronises it and training
        checkpoints hold it; the final save drops it.
        """
        if args.alpha == 0 or args.feature_projection != "linear":
            return
        s_dim, t_dim = hidden_size_of(student), hidden_size_of(teacher)
        if s_dim != t_dim:
            setattr(student, PROJECTOR_ATTR, FeatureProjector(s_dim, t_dim))

    def _install_feature_hook(self, student: nn.Module) -> None:
        """Pool (and project) the student's features inside its own forward.

        Under DDP every parameter that gets a gradient must be reached from the
        forward's outputs, so the projector runs in a forward hook and its result is
        returned with the outputs. A plain closure (not a bound method), so deep
        copies of the student do not copy the trainer.
        """
        trainer = self

        def hook(module: nn.Module, args: tuple, kwargs: dict, output: Any) -> Any:
            if not trainer._collect_features:
                return None
            pooled = trainer._pooled_features(module, output, kwargs)
            if pooled is None:
                return None
            projector = getattr(module, PROJECTOR_ATTR, None)
            features = projector(pooled) if projector is not None else pooled
            return _with_features_field(type(output))(**output, **{STUDENT_FEATURES_KEY: features})

        student.register_forward_hook(hook, with_kwargs=True)

    @contextlib.contextmanager
    def _projector_detached(self) -> Iterator[None]:
        projector = getattr(self.model, PROJECTOR_ATTR, None)
        if projector is None:
            yield
            return
        delattr(self.model, PROJECTOR_ATTR)
        try:
            yield
        finally:
            setattr(self.model, PROJECTOR_ATTR, projector)

    # ------------------------------------------------------------------ phases
    def _apply_phase(self, phase: str, *, entering: bool) -> None:
        quantized = phase in ("quant", "joint")
        if self.quant_spec is not None:
            if quantized and entering:
                refit_(self.model)
            set_quantization_enabled(self.model, quantized)
            self._quant_fitted = self._quant_fitted or quantized
        if entering:
            logger.info("hf-quads: step %d enters the %s phase", self.state.global_step, phase)
            self.log({"quads_phase": PHASE_IDS[phase]})

    @property
    def current_phase(self) -> str:
        """The phase of the step being trained (``distill``, ``quant`` or ``joint``)."""
        return self._current_phase or self.phase_plan.segments[0].phase

    # -------------------------------------------------------------- features
    def _pooled_features(
        self, model: nn.Module, outputs: Any, inputs: Mapping
    ) -> torch.Tensor | None:
        hidden = getattr(outputs, "encoder_hidden_states", None) or getattr(
            outputs, "hidden_states", None
        )
        if not hidden:
            return None
        states = hidden[self.args.feature_layer]
        attention_mask = inputs.get("attention_mask")
        mask = None
        if attention_mask is not None:
            core = self.accelerator.unwrap_model(model)
            mask = frame_attention_mask(core, states.shape[1], attention_mask)
        return pool_hidden_states(states, mask, self.args.feature_pooling)

    # -------------------------------------------------------------------- loss
    def _model_inputs(self, inputs: Mapping) -> dict[str, Any]:
        return {k: v for k, v in inputs.items() if k != ROW_INDEX_COLUMN}

    def _teacher_outputs(self, inputs: Mapping, want_features: bool) -> dict[str, torch.Tensor]:
        """The teacher's logits (and pooled features), from the cache or a no-grad forward."""
        if self._cache is not None and ROW_INDEX_COLUMN in inputs and self.model.training:
            return self._cache.get(inputs[ROW_INDEX_COLUMN], device=self.args.device)
        dtype = self._teacher_dtype()
        t_inputs = {
            k: (v.to(dtype) if torch.is_tensor(v) and v.is_floating_point() else v)
            for k, v in self._model_inputs(inputs).items()
            if k != "labels" or _is_seq2seq(self.model)
        }
        with torch.no_grad():
            out = self.teacher(**t_inputs, output_hidden_states=want_features)
        result = {"logits": out.logits.float()}
        if want_features:
            pooled = self._pooled_features(self.teacher, out, inputs)
            if pooled is not None:
                result["features"] = pooled.float()
        return result

    def _kd_term(
        self, student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels
    ) -> torch.Tensor:
        s, t = student_logits.float(), teacher_logits.float()
        if s.dim() == 2:  # sequence classification
            return logit_kd_loss(s, t, temperature=self.args.temperature)
        if not _is_seq2seq(self.model):  # causal LM: position i predicts token i + 1
            s, t, labels = s[:, :-1], t[:, :-1], labels[:, 1:]
        return logit_kd_loss(s, t, temperature=self.args.temperature, labels=labels)

    def _feature_term(self, student_feats, teacher_feats) -> torch.Tensor:
        if student_feats.shape[-1] != teacher_feats.shape[-1]:  # feature_projection="pool"
            teacher_feats = match_dims(teacher_feats, student_feats.shape[-1])
        return feature_loss(student_feats, teacher_feats, kind=self.args.feature_loss)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """The QUADS objective of the current phase; evaluation reports the task loss only."""
        model_inputs = self._model_inputs(inputs)
        if "labels" not in model_inputs:
            raise ValueError("DistillQuantTrainer needs `labels` in every batch (the L_GT term)")
        if not model.training:
            outputs = model(**model_inputs)
            return (outputs.loss, outputs) if return_outputs else outputs.loss

        phase = self.current_phase
        args = self.args
        use_teacher = phase in ("distill", "joint")
        want_features = use_teacher and args.alpha > 0
        self._collect_features = want_features
        try:
            outputs = model(**model_inputs, output_hidden_states=want_features)
        finally:
            self._collect_features = False
        if outputs.loss is None:
            raise ValueError("the student returned no loss: pass `labels` the model understands")
        terms: dict[str, torch.Tensor] = {"gt": outputs.loss}
        if use_teacher:
            teacher_out = self._teacher_outputs(inputs, want_features)
            if args.kd_weight > 0:
                terms["kd"] = self._kd_term(
                    outputs.logits, teacher_out["logits"], model_inputs["labels"]
                )
            student_feats = outputs.get(STUDENT_FEATURES_KEY) if want_features else None
            if student_feats is not None and "features" in teacher_out:
                terms["feature"] = self._feature_term(student_feats, teacher_out["features"])
        if phase in ("quant", "joint") and self.quant_spec is not None and args.centroid_weight > 0:
            terms["centroid"] = centroid_loss(self.accelerator.unwrap_model(model))
        loss, values = combine_losses(
            terms,
            phase=phase,
            alpha=args.alpha,
            gamma=args.gamma,
            kd_weight=args.kd_weight,
            centroid_weight=args.centroid_weight,
        )
        for name, value in values.items():
            self._loss_terms[name].append(value)
        if return_outputs:
            return loss, outputs
        return loss

    def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
        """Add the averaged loss terms and the current phase to the Trainer's training logs."""
        if "loss" in logs and self._loss_terms:
            for name, values in self._loss_terms.items():
                logs[f"loss_{name}"] = round(sum(values) / len(values), 6)
            logs["quads_phase"] = PHASE_IDS[self.current_phase]
            self._loss_terms.clear()
        super().log(logs, *args, **kwargs)

    # ------------------------------------------------------------------ saving
    def _plain_state_dict(self) -> dict[str, torch.Tensor]:
        """The student's weights without quantizer state (for a run that never quantized)."""
        quantizer_state = {
            f"{name}.{key}"
            for name, module in qat_modules(self.model)
            for key, _ in [
                *module.named_buffers(recurse=False),
                *module.named_parameters(recurse=False),
            ]
            if key not in ("weight", "bias")
        }
        return {k: v for k, v in self.model.state_dict().items() if k not in quantizer_state}

    def _model_card(self, saved_dir: str | os.PathLike, output_dir: str | None = None) -> Any:
        from .hub import render_card, spec_from_training

        name = os.path.basename(os.path.abspath(output_dir or self.args.output_dir))
        spec = spec_from_training(
            self.args,
            self.accelerator.unwrap_model(self.model),
            self.teacher,
            self.state.log_history,
            saved_dir,
            quantized=self._quant_fitted,
            repo_id=self.hub_model_id or self.args.hub_model_id or name,
            processing_class=self.processing_class,
        )
        return render_card(spec)

    def create_model_card(self, *args: Any, **kwargs: Any) -> None:
        """Write hf-quads' card (method, compression table, metadata) as README.md."""
        if self.is_world_process_zero():
            self._model_card(self.args.output_dir).save(
                os.path.join(self.args.output_dir, "README.md")
            )

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        """Save the student for use: the packed low-bit checkpoint once it has been quantized.

        Training checkpoints (``_internal_call``) keep everything a resume needs
        (quantizer state, feature projector). The final save drops the projector and
        writes, atomically, the compressed checkpoint (or the plain one if no
        quantization phase has run), the processor, the training arguments (without
        the Hub token) and the model card (README.md, see :func:`hf_quads.hub.render_card`).
        With ``push_to_hub=True`` it is then pushed (:meth:`push_to_hub`).
        """
        if _internal_call:
            super().save_model(output_dir, _internal_call=True)
            return
        self._save_compressed(output_dir or self.args.output_dir)
        if self.args.push_to_hub:
            self.push_to_hub(commit_message="Model save")

    def _save_compressed(self, output_dir: str) -> None:
        if not self.args.should_save:
            return
        args = copy.copy(self.args)
        args.hub_token = None
        with (
            self._projector_detached(),
            atomic_directory(output_dir, mode="merge", stale_patterns=WEIGHT_FILE_PATTERNS) as tmp,
        ):
            if self._quant_fitted:
                save_quantized(self.model, tmp)
            else:
                self.model.save_pretrained(tmp, state_dict=self._plain_state_dict())
            if self.processing_class is not None:
                self.processing_class.save_pretrained(tmp)
            torch.save(args, os.path.join(tmp, TRAINING_ARGS_NAME))
            self._model_card(tmp, output_dir).save(os.path.join(tmp, "README.md"))

    def push_to_hub(
        self,
        commit_message: str | None = "End of training",
        blocking: bool = True,
        token: str | None = None,
        revision: str | None = None,
        **kwargs: Any,
    ) -> Any:
        """Save the compressed student into ``output_dir`` and push it with its card.

        Unlike ``Trainer.push_to_hub``, which uploads a training checkpoint, this
        uploads what :meth:`save_model` writes (the packed low-bit weights, processor,
        card) plus ``output_dir/onnx`` if an export is there, in one commit
        (:func:`hf_quads.hub.push_folder`). ``blocking`` is accepted for
        compatibility; the upload always completes before returning.
        """
        from .hub import create_repo, push_folder

        token = token if token is not None else self.args.hub_token
        if self.hub_model_id is None and self.is_world_process_zero():
            name = self.args.hub_model_id or os.path.basename(os.path.abspath(self.args.output_dir))
            self.hub_model_id = create_repo(name, token=token, private=self.args.hub_private_repo)
        self._save_compressed(self.args.output_dir)
        if not self.is_world_process_zero():
            return None
        self._finish_current_push()
        return push_folder(
            self.args.output_dir,
            self.hub_model_id,
            token=token,
            private=self.args.hub_private_repo,
            revision=revision if revision is not None else getattr(self.args, "hub_revision", None),
            commit_message=commit_message or "End of training",
            create=False,
        )
