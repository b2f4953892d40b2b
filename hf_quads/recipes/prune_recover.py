"""The IWSLT 2025 recipe end to end: prune by a dev metric, recover with QLoRA + sequence KD.

One YAML file (``trainers/iwslt25-*.yaml``) describes a run:

1. **data** - a CoVoST-2 or MuST-C layout; a missing synthetic corpus is synthesised;
2. **teacher** - ``model_name_or_path`` (a fine-tuned speech seq2seq checkpoint), or
   a ``teacher:`` section that builds a tiny Whisper and trains it on the corpus
   (what runs here, with no weights to download);
3. **prune** - :class:`~hf_quads.prune.LayerPruner` on ``dev_samples`` dev rows;
4. **recover** - the teacher's translations of the training audio are added to the
   references (:func:`~hf_quads.recover.build_sequence_kd_dataset`), the pruned
   model is fine-tuned with QLoRA (:func:`~hf_quads.recover.prepare_qlora`) and merged
   (:func:`~hf_quads.recover.merge_qlora`);
5. **report** - the metric of the teacher, the pruned and the recovered model on the
   evaluation split, in ``prune_recover_report.json`` beside ``pruning_report.json``
   and ``pruning_plot.png``.

Models: speech encoder-decoders (Whisper and the like) whose ``generate`` takes the
audio features, and Qwen2-Audio, prompted through
:class:`~hf_quads.audio_llm.AudioLLMTranslator` (its chat template + ``instruction``).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from .loading import RecipeError, read_recipe

REPORT_NAME = "prune_recover_report.json"


# ----------------------------------------------------------------------------- the schema
@dataclass
class DataSection:
    """Where the speech-translation corpus is and how much of it to use."""

    format: Literal["covost", "mustc"] = "covost"
    root: str = "data/synth_st"
    source_lang: str = "en"
    target_lang: str = "de"
    #: Dev rows scored for every pruning candidate (the paper: 100 segments).
    dev_samples: int | None = 100
    #: Split on which the teacher, pruned and recovered models are reported.
    eval_split: str = "test"
    eval_samples: int | None = None
    train_samples: int | None = None
    max_seconds: float | None = None
    #: Arguments of :func:`hf_quads.data.synth.synthesize_st_corpus`; when given and
    #: ``root`` has no manifest yet, the synthetic corpus is written there first.
    synthesize: dict[str, Any] | None = None


@dataclass
class TeacherSection:
    """A tiny Whisper encoder-decoder built from a config and trained on the corpus."""

    d_model: int = 64
    encoder_layers: int = 2
    decoder_layers: int = 6
    heads: int = 4
    #: Whisper window in whole seconds (the feature extractor's chunk length).
    seconds: int = 4
    vocab_size: int = 500
    max_target_positions: int = 64
    #: ``Seq2SeqTrainingArguments`` fields (learning_rate, num_train_epochs, ...).
    training: dict[str, Any] = field(default_factory=dict)


@dataclass
class PruneSection:
    """:class:`~hf_quads.prune.LayerPruner` settings."""

    stack: str | None = "decoder"
    metric: str = "chrf++"
    mode: str = "exact"
    num_layers_to_remove: int | None = None
    target_num_layers: int | None = None
    max_metric_drop: float | None = None
    protect: list[int] = field(default_factory=lambda: [0, -1])
    generation: dict[str, Any] = field(default_factory=dict)
    batch_size: int = 16


@dataclass
class QLoRASection:
    """:func:`~hf_quads.recover.prepare_qlora` settings (the paper's defaults)."""

    r: int = 64
    alpha: int = 128
    use_rslora: bool = True
    dropout: float = 0.0
    target_modules: str | list[str] = "all-linear"
    bnb_4bit_quant_type: str = "nf4"
    bnb_4bit_use_double_quant: bool = True
    compute_dtype: Literal["bfloat16", "float16", "float32"] = "bfloat16"


@dataclass
class RecoverSection:
    """Recovery after pruning: sequence-level KD data, QLoRA fine-tuning, merge."""

    sequence_kd: bool = True
    qlora: QLoRASection = field(default_factory=QLoRASection)
    #: ``Seq2SeqTrainingArguments`` fields.
    training: dict[str, Any] = field(default_factory=dict)
    merge: bool = True


@dataclass
class PruneRecoverRecipe:
    """A whole prune-and-recover run, as read from a recipe YAML file."""

    output_dir: str
    task: Literal["prune"] = "prune"
    model_name_or_path: str | None = None
    teacher: TeacherSection | None = None
    data: DataSection = field(default_factory=DataSection)
    prune: PruneSection = field(default_factory=PruneSection)
    recover: RecoverSection = field(default_factory=RecoverSection)
    #: Audio LLMs: the translation instruction of the prompt; default
    #: "Translate the <source> speech into <target>." from the data languages.
    instruction: str | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if (self.model_name_or_path is None) == (self.teacher is None):
            raise RecipeError(
                "give exactly one of model_name_or_path (a fine-tuned checkpoint) and teacher "
                "(a tiny model to build and train here)"
            )
        p = self.prune
        if (
            p.num_layers_to_remove is None
            and p.target_num_layers is None
            and (p.max_metric_drop is None)
        ):
            raise RecipeError(
                "prune: say when to stop: num_layers_to_remove, target_num_layers or "
                "max_metric_drop"
            )

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> PruneRecoverRecipe:
        """Build from nested dicts; unknown keys are errors that name the section."""
        return _build(cls, raw, "recipe")

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> PruneRecoverRecipe:
        try:
            return cls.from_dict(read_recipe(path))
        except RecipeError as error:
            message = str(error)
            raise RecipeError(
                message if message.startswith(str(path)) else f"{path}: {message}"
            ) from None


def _build(cls: type, raw: Any, where: str) -> Any:
    if not isinstance(raw, dict):
        raise RecipeError(f"{where}: expected a mapping, got {raw!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise RecipeError(f"{where}: unknown key(s) {unknown}; known: {sorted(fields)}")
    kwargs = {}
    for name, value in raw.items():
        sub = _SECTIONS.get((cls, name))
        kwargs[name] = _build(sub, value, f"{where}.{name}") if sub and value is not None else value
    try:
        return cls(**kwargs)
    except TypeError as error:
        raise RecipeError(f"{where}: {error}") from None


_SECTIONS: dict[tuple[type, str], type] = {
    (PruneRecoverRecipe, "teacher"): TeacherSection,
    (PruneRecoverRecipe, "data"): DataSection,
    (PruneRecoverRecipe, "prune"): PruneSection,
    (PruneRecoverRecipe, "recover"): RecoverSection,
    (RecoverSection, "qlora"): QLoRASection,
}


# ------------------------------------------------------------------------------- the steps
def load_data(section: DataSection, seed: int = 0) -> Any:
    """The corpus as a ``DatasetDict``; synthesises it first when asked and missing."""
    from ..data import load_covost, load_mustc

    root = Path(section.root)
    if section.format == "covost":
        stem = f"covost_v2.{section.source_lang}_{section.target_lang}"
        present = any(root.glob(f"{stem}*.tsv"))
        if not present and section.synthesize is not None:
            from ..data.synth import synthesize_st_corpus

            if (section.source_lang, section.target_lang) != ("en", "de"):
                raise RecipeError("the synthetic corpus is English -> German only")
            synthesize_st_corpus(root, **{"seed": seed, **section.synthesize})
        data = load_covost(root, source_lang=section.source_lang, target_lang=section.target_lang)
    else:
        data = load_mustc(root, target_lang=section.target_lang)
    for split in ("train", "validation", section.eval_split):
        if split not in data:
            raise RecipeError(f"{root}: the corpus has no {split!r} split (has {list(data)})")
    return data


def featurize(dataset: Any, processor: Any, max_seconds: float | None = None) -> Any:
    """Add ``input_features`` and tokenised ``labels`` (from ``translation``) to each row."""
    from ..data import prepare_features

    tokenizer = processor.tokenizer

    def fn(batch: dict[str, list]) -> dict[str, Any]:
        feats = prepare_features(
            batch["audio"], processor.feature_extractor, max_seconds=max_seconds,
            return_tensors=None,
        )  # fmt: skip
        out = {key: list(value) for key, value in feats.items()}
        out["labels"] = tokenizer(list(batch["translation"]))["input_ids"]
        return out

    return dataset.map(fn, batched=True, batch_size=64, desc="features")


def _seq2seq_args(output_dir: Path, training: dict[str, Any], seed: int) -> Any:
    from transformers import Seq2SeqTrainingArguments

    settings = {
        "per_device_train_batch_size": 16,
        "num_train_epochs": 1,
        "logging_steps": 25,
        "report_to": [],
        "save_strategy": "no",
        "disable_tqdm": False,
        "dataloader_pin_memory": torch.cuda.is_available(),
        **training,
        "output_dir": str(output_dir),
        "seed": seed,
        "remove_unused_columns": False,
        "label_names": ["labels"],
    }
    known = {f.name for f in dataclasses.fields(Seq2SeqTrainingArguments)}
    if "warmup_ratio" in settings and "warmup_ratio" not in known:
        # transformers 5 folds the ratio into warmup_steps (a float below 1 is a ratio).
        ratio = settings.pop("warmup_ratio")
        if ratio:
            settings.setdefault("warmup_steps", float(ratio))
    try:
        return Seq2SeqTrainingArguments(**settings)
    except TypeError as error:
        raise RecipeError(f"training arguments: {error}") from None


def _train(model: Any, dataset: Any, args: Any, collator: Any) -> Any:
    from transformers import Seq2SeqTrainer

    trainer = Seq2SeqTrainer(model=model, args=args, train_dataset=dataset, data_collator=collator)
    trainer.train()
    return trainer


def training_set(dataset: Any, processor: Any, translator: Any, model: Any) -> tuple[Any, Any]:
    """Training rows and their collator: audio features + labels, or prompted LLM rows."""
    from ..audio_llm import AudioLLMCollator
    from ..data import SpeechSeq2SeqCollator

    if translator is not None:
        rows = dataset.map(
            translator.training_map_fn(), batched=True, batch_size=32,
            remove_columns=dataset.column_names, desc="prompts",
        )  # fmt: skip
        return rows, AudioLLMCollator(processor.tokenizer.pad_token_id)
    rows = featurize(dataset, processor)
    rows = rows.remove_columns(
        [c for c in rows.column_names if c not in ("input_features", "labels")]
    )
    return rows, SpeechSeq2SeqCollator(model.config.decoder_start_token_id)


def train_tiny_teacher(section: TeacherSection, data: Any, out: Path, seed: int) -> tuple:
    """Build a tiny Whisper seq2seq and its tokenizer and train it on ``data["train"]``."""
    from transformers import WhisperFeatureExtractor

    from ..models import SpeechTextProcessor, train_bpe_tokenizer, whisper_seq2seq

    tokenizer = train_bpe_tokenizer(data["train"]["translation"], vocab_size=section.vocab_size)
    extractor = WhisperFeatureExtractor(feature_size=80, chunk_length=section.seconds)
    processor = SpeechTextProcessor(extractor, tokenizer)
    torch.manual_seed(seed)
    model = whisper_seq2seq(
        tokenizer, max_target_positions=section.max_target_positions, d_model=section.d_model,
        encoder_layers=section.encoder_layers, decoder_layers=section.decoder_layers,
        heads=section.heads, seconds=section.seconds,
    )  # fmt: skip
    train, collator = training_set(data["train"], processor, None, model)
    defaults = {"learning_rate": 2e-3, "num_train_epochs": 10, "warmup_ratio": 0.05}
    args = _seq2seq_args(out / "teacher-run", {**defaults, **section.training}, seed)
    _train(model, train, args, collator)
    model.save_pretrained(out / "teacher")
    processor.save_pretrained(out / "teacher")
    return model.eval(), processor


def load_teacher(path: str) -> tuple:
    """A fine-tuned checkpoint (speech seq2seq or Qwen2-Audio) and its processor.

    On a GPU the model goes there in its saved dtype (bf16 for Qwen2-Audio-7B).
    """
    from transformers import AutoConfig, AutoModelForSpeechSeq2Seq, AutoProcessor

    from ..audio_llm import is_audio_llm

    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = "auto" if device == "cuda" else torch.float32
    if is_audio_llm(AutoConfig.from_pretrained(path)):
        from transformers import Qwen2AudioForConditionalGeneration

        model = Qwen2AudioForConditionalGeneration.from_pretrained(path, dtype=dtype)
        return model.to(device).eval(), AutoProcessor.from_pretrained(path)
    try:
        model = AutoModelForSpeechSeq2Seq.from_pretrained(path, dtype=dtype).to(device)
    except ValueError as error:
        raise RecipeError(
            f"{path}: neither a speech encoder-decoder nor Qwen2-Audio ({error}); other models "
            "go through LayerPruner(generate_fn=..., inputs_fn=...) from Python"
        ) from None
    try:
        processor = AutoProcessor.from_pretrained(path)
    except (OSError, ValueError, TypeError):
        from ..models import SpeechTextProcessor

        processor = SpeechTextProcessor.from_pretrained(path)
    return model.eval(), processor


def _generation_hooks(translator: Any) -> dict[str, Any]:
    if translator is None:
        return {}
    return {"generate_fn": translator.generate, "inputs_fn": translator.inputs}


def evaluate(
    model: Any, processor: Any, dataset: Any, section: PruneSection, translator: Any = None
) -> float:
    """The prune metric of ``model`` on ``dataset`` (greedy generation)."""
    from ..prune import GenerationScorer

    scorer = GenerationScorer(
        dataset, processor, section.metric, batch_size=section.batch_size,
        generation_kwargs=section.generation, **_generation_hooks(translator),
    )  # fmt: skip
    return scorer(model)


def _size(model: torch.nn.Module) -> dict[str, int]:
    params = sum(p.numel() for p in model.parameters())
    nbytes = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    return {"parameters": params, "bytes": nbytes}


def run_prune_recover(recipe: PruneRecoverRecipe) -> dict[str, Any]:
    """Run a recipe; returns (and writes) the report."""
    from ..audio_llm import AudioLLMTranslator, is_audio_llm, translation_instruction
    from ..data import subset
    from ..prune import LayerPruner, get_layer_stack
    from ..recover import build_sequence_kd_dataset, merge_qlora, prepare_qlora

    out = Path(recipe.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    random.seed(recipe.seed)
    np.random.seed(recipe.seed)
    torch.manual_seed(recipe.seed)
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        timings[name] = round(time.perf_counter() - clock, 1)
        clock = time.perf_counter()

    data = load_data(recipe.data, recipe.seed)
    train = subset(data["train"], recipe.data.train_samples, recipe.seed)
    dev = subset(data["validation"], recipe.data.dev_samples, recipe.seed)
    test = subset(data[recipe.data.eval_split], recipe.data.eval_samples, recipe.seed)
    lap("data")
    if recipe.teacher is not None:
        teacher, processor = train_tiny_teacher(recipe.teacher, {"train": train}, out, recipe.seed)
        lap("teacher_training")
    else:
        teacher, processor = load_teacher(recipe.model_name_or_path)
    translator = None
    if is_audio_llm(teacher.config):
        instruction = recipe.instruction or translation_instruction(
            recipe.data.source_lang, recipe.data.target_lang
        )
        translator = AudioLLMTranslator(
            processor, instruction, max_seconds=recipe.data.max_seconds,
            generation_kwargs=recipe.prune.generation,
        )  # fmt: skip
    hooks = _generation_hooks(translator)
    stack = recipe.prune.stack
    report: dict[str, Any] = {
        "recipe": dataclasses.asdict(recipe),
        "metric": recipe.prune.metric,
        "eval_split": recipe.data.eval_split,
        "eval_examples": len(test),
        "teacher": {
            recipe.prune.metric: evaluate(teacher, processor, test, recipe.prune, translator),
            "layers": get_layer_stack(teacher, stack).num_layers,
            **_size(teacher),
        },
    }
    lap("teacher_eval")

    p = recipe.prune
    student = copy.deepcopy(teacher)
    result = LayerPruner(
        student, processor, dev, metric=p.metric, stack=stack, protect=p.protect, mode=p.mode,
        num_layers_to_remove=p.num_layers_to_remove, target_num_layers=p.target_num_layers,
        max_metric_drop=p.max_metric_drop, generation_kwargs=p.generation,
        batch_size=p.batch_size, **hooks,
    ).prune()  # fmt: skip
    result.save_report(out)
    student.save_pretrained(out / "pruned")
    processor.save_pretrained(out / "pruned")
    report["removed_layers"] = result.removal_order
    report["pruned"] = {
        p.metric: evaluate(student, processor, test, p, translator),
        "layers": get_layer_stack(student, stack).num_layers,
        **_size(student),
    }
    lap("pruning")

    r = recipe.recover
    if r.sequence_kd:
        train = build_sequence_kd_dataset(
            teacher, train, processor, generation_kwargs=p.generation, batch_size=p.batch_size,
            **hooks,
        )  # fmt: skip
        origins = train["origin"]
        report["sequence_kd"] = {o: origins.count(o) for o in ("reference", "teacher")}
    lap("sequence_kd")
    rows, collator = training_set(train, processor, translator, student)
    # The QLoRA model is loaded from out/pruned: free the memory first (the pruning
    # result holds the pruned model too).
    del student, teacher, result
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    q = r.qlora
    model = prepare_qlora(
        out / "pruned", r=q.r, alpha=q.alpha, use_rslora=q.use_rslora, dropout=q.dropout,
        target_modules=q.target_modules, compute_dtype=getattr(torch, q.compute_dtype),
        quant_type=q.bnb_4bit_quant_type, double_quant=q.bnb_4bit_use_double_quant,
    )  # fmt: skip
    _train(model, rows, _seq2seq_args(out / "recover-run", r.training, recipe.seed), collator)
    if r.merge:
        recovered = merge_qlora(model, out / "recovered", processor=processor)
        del model  # the 4-bit base and its adapters
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
            recovered = recovered.to("cuda")  # scored where the teacher was
    else:
        model.save_pretrained(out / "recovered-adapter")
        recovered = model
    report["recovered"] = {
        p.metric: evaluate(recovered, processor, test, p, translator),
        "layers": report["pruned"]["layers"],
        **_size(recovered),
    }
    lap("recovery")
    report["timings_s"] = timings
    (out / REPORT_NAME).write_text(json.dumps(report, indent=2, default=str) + "\n")
    return report


__all__ = [
    "REPORT_NAME",
    "DataSection",
    "PruneRecoverRecipe",
    "PruneSection",
    "QLoRASection",
    "RecipeError",
    "RecoverSection",
    "TeacherSection",
    "evaluate",
    "featurize",
    "load_data",
    "load_teacher",
    "run_prune_recover",
    "train_tiny_teacher",
    "training_set",
]
