"""DistillQuantConfig: defaults, command-line parsing, validation messages."""

from __future__ import annotations

import pytest
from transformers import HfArgumentParser, TrainingArguments

from hf_quads.config import DistillQuantConfig


def make(**kwargs) -> DistillQuantConfig:
    return DistillQuantConfig(output_dir="out", report_to="none", **kwargs)


def test_is_training_arguments_with_quads_defaults():
    cfg = make()
    assert isinstance(cfg, TrainingArguments)
    assert (cfg.quant_method, cfg.bits, cfg.schedule) == ("kmeans", 4, "quads")
    assert cfg.phase_plan.boundaries(20)[1] == (3, "quant")
    spec = cfg.quant_spec_kwargs()
    assert spec["method"] == "kmeans" and spec["bits"] == 4 and spec["seed"] == cfg.seed


def test_parses_from_the_command_line():
    parser = HfArgumentParser(DistillQuantConfig)
    (cfg,) = parser.parse_args_into_dataclasses(
        [
            "--output_dir", "o", "--report_to", "none", "--bits", "2",
            "--quant_method", "uniform", "--uniform_granularity", "group",
            "--quant_group_size", "32", "--schedule", "distill:1,joint:2",
            "--quant_module_bits", '{"fc\\\\d": 8}', "--quant_exclude", "conv1", "conv2",
            "--teacher_model_init_kwargs", '{"revision": "main"}',
        ]
    )  # fmt: skip
    assert cfg.bits == 2 and cfg.quant_method == "uniform"
    assert cfg.quant_module_bits == {"fc\\d": 8}
    assert cfg.quant_exclude == ["conv1", "conv2"]
    assert cfg.teacher_model_init_kwargs == {"revision": "main"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"bits": 0}, "bits must be an integer from 1 to 8"),
        ({"bits": 9}, "bits must be an integer from 1 to 8"),
        ({"quant_method": "gptq"}, "quant_method must be"),
        ({"alpha": 1.5}, r"alpha must lie in \[0, 1\]"),
        ({"gamma": -0.1}, r"gamma must lie in \[0, 1\]"),
        ({"temperature": 0.0}, "temperature must be a finite number > 0"),
        ({"kd_weight": -1.0}, "kd_weight must be a finite number >= 0"),
        ({"schedule": "distill:2,quantise:2"}, "unknown phase 'quantise'"),
        ({"quant_method": "none"}, "use schedule='distill'"),
        ({"quant_module_bits": {"fc1": 12}}, r"quant_module_bits\['fc1'\] must be an integer"),
        ({"quant_module_bits": "{not json"}, "must be a JSON object"),
        ({"quant_include": ["fc("]}, "not a valid regular expression"),
        ({"quant_method": "uniform", "uniform_granularity": "group"}, "needs quant_group_size"),
        ({"quant_method": "uniform", "quant_group_size": 32}, "needs uniform_granularity='group'"),
        ({"quant_group_size": 0}, "quant_group_size must be positive"),
    ],
)
def test_validation_says_what_to_change(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make(**kwargs)


def test_distillation_only_run_is_valid():
    cfg = make(quant_method="none", schedule="distill")
    assert not cfg.phase_plan.quantizes
