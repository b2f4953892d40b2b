"""The augmentation maths of benchmarks/demo_teacher.py (the record behind
benchmarks/README.md's teacher section): pure functions on Whisper-normalised log-mels."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import benchmark_module


@pytest.fixture(scope="module")
def bench():
    yield from benchmark_module("demo_teacher")


@pytest.fixture(scope="module")
def common():
    yield from benchmark_module("common")


def _bin_of(hertz: float, bins: int = 80) -> int:
    from transformers.audio_utils import hertz_to_mel

    centres = np.linspace(0.0, hertz_to_mel(8000.0, mel_scale="slaney"), bins + 2)[1:-1]
    return int(np.argmin(np.abs(centres - hertz_to_mel(hertz, mel_scale="slaney"))))


def test_power_round_trip(bench):
    x = torch.rand(3, 80, 40) * 1.5 - 0.4  # within the 8-decade range Whisper keeps
    assert torch.allclose(bench.to_logmel(bench.to_power(x)), x, atol=1e-5)


def test_warp_moves_energy_to_f_times_factor(bench):
    x = torch.full((2, 80, 20), -0.5)
    x[:, _bin_of(1000.0)] = 1.0
    y = bench.warp_frequency(x, torch.tensor([1.0, 2.0]))
    assert torch.allclose(y[0], x[0])
    assert int(y[1, :, 0].argmax()) == _bin_of(2000.0)
    shrunk = bench.warp_frequency(x[:1], torch.tensor([0.5]))
    assert abs(int(shrunk[0, :, 0].argmax()) - _bin_of(500.0)) <= 1  # between two bins


def test_echo_repeats_a_click_at_the_delay(bench):
    x = torch.full((1, 80, 60), -0.5)
    x[0, :, 10] = 1.0
    assert torch.allclose(bench.add_echo(x, torch.tensor([0]), torch.tensor([0.9])), x, atol=1e-6)
    y = bench.add_echo(x, torch.tensor([5]), torch.tensor([0.9]), repeats=3)
    row = y[0, 0]
    echoes = [float(row[t]) for t in (15, 20, 25)]
    assert echoes[0] > echoes[1] > echoes[2] > float(row[30])  # three repeats, each fainter
    # the first repeat is g^2 of the click's power: 0.81 -> log10 0.81 / 4 below it
    assert float(row[10] - row[15]) == pytest.approx(-np.log10(0.81) / 4, abs=0.01)
    # before the click only the background's own echo shows
    background = bench.add_echo(torch.full_like(x, -0.5), torch.tensor([5]), torch.tensor([0.9]))
    assert torch.allclose(y[0, :, :10], background[0, :, :10])


def test_spec_augment_masks_bands_with_the_mean(bench):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(4, 80, 300)
    assert torch.equal(bench.spec_augment(x, gen, max_freq=0, max_time=0), x)
    y = bench.spec_augment(x, gen, freq_masks=1, max_freq=10, time_masks=0)
    for b in range(4):
        changed = (y[b] != x[b]).any(dim=1).nonzero().flatten()
        assert len(changed) <= 10
        if len(changed):
            assert int(changed[-1] - changed[0]) + 1 == len(changed)  # one contiguous band
            assert torch.allclose(y[b, changed], x[b].mean().expand(len(changed), 300))


def test_mel_mean_norm_centres_each_bin(bench):
    x = torch.randn(2, 80, 100) + torch.linspace(-3, 3, 80)[None, :, None]
    assert bench.mel_mean_norm(x).mean(dim=-1).abs().max() < 1e-5


def test_collator_is_seeded_and_augments_half(bench):
    # within the 8 decades Whisper keeps, so untouched examples come back unchanged
    rows = [
        {"input_features": torch.rand(80, 300) * 1.5 - 0.4, "labels": torch.tensor(i)}
        for i in range(32)
    ]
    a = bench.AugmentingCollator(bench.random_echo, seed=3)(rows)
    b = bench.AugmentingCollator(bench.random_echo, seed=3)(rows)
    assert torch.equal(a["input_features"], b["input_features"])
    assert a["labels"].tolist() == list(range(32))
    plain = torch.stack([r["input_features"] for r in rows])
    same = torch.isclose(a["input_features"], plain, atol=1e-5).flatten(1).all(dim=1)
    changed = (~same).sum()
    assert 4 <= int(changed) <= 28
    assert torch.equal(bench.AugmentingCollator(None, seed=0)(rows)["input_features"], plain)


def test_augmentations_reject_bad_input(bench):
    x = torch.zeros(2, 80, 10)
    with pytest.raises(ValueError, match="batch, bins, frames"):
        bench.spec_augment(torch.zeros(80, 10), torch.Generator())
    with pytest.raises(ValueError, match="> 0"):
        bench.warp_frequency(x, torch.tensor([1.0, 0.0]))
    with pytest.raises(ValueError, match="one value per example"):
        bench.warp_frequency(x, torch.tensor([1.0]))
    with pytest.raises(ValueError, match=">= 0"):
        bench.add_echo(x, torch.tensor([3, -1]), torch.tensor([0.5, 0.5]))


def test_summarise_scores_each_setting_and_its_weakest_voices(bench):
    labels = [0, 1, 0, 1, 0, 1]
    speakers_of = ["a", "a", "b", "b", "c", "c"]
    split = {
        "baseline": [0, 1, 1, 0, 0, 0],  # a 100 %, b 0 %, c 50 %
        "echo": [0, 0, 0, 1, 0, 1],  # a 50 %, b 100 %, c 100 %
    }
    results = [
        {"name": n, "train_seconds": 1.0, "validation": {"predictions": p, "labels": labels},
         "test": {"predictions": p, "labels": labels}}
        for n, p in split.items()
    ]  # fmt: skip
    speakers = {"a": {"variant": "m1"}, "b": {"variant": "whisper"}, "c": {"variant": "f2"}}
    out = bench.summarise(results, {"validation": speakers_of, "test": speakers_of}, speakers)
    base = out["settings"]["baseline"]["test"]
    assert base["accuracy"] == pytest.approx(0.5)
    assert list(base["weakest_voices"]) == ["whisper", "f2", "m1"]  # worst first
    assert base["weakest_voices"]["whisper"] == 0.0
    assert out["settings"]["echo"]["test"]["accuracy"] == pytest.approx(5 / 6, abs=1e-4)  # rounded
    assert out["settings"]["echo"]["description"] == bench.SETTINGS["echo"].description
    assert out["settings"]["echo"]["seed"] == 0
    rows = out["per_voice"]["test"]
    assert [(r["variant"], r["baseline"], r["echo"]) for r in rows] == [
        ("whisper", 0.0, 1.0), ("f2", 0.5, 1.0), ("m1", 1.0, 0.5)
    ]  # fmt: skip


def test_benchmark_runs_end_to_end_on_a_tiny_corpus(bench, tmp_path):
    out = tmp_path / "result.json"
    bench.main([
        "--quick", "--data_dir", str(tmp_path / "fsc"), "--epochs", "1", "--parallel", "1",
        "--settings", "baseline", "mel_mean_norm", "no_voice_effects", "seconds_2", "baseline",
        "--run_dir", str(tmp_path / "runs"), "--out", str(out),
    ])  # fmt: skip
    import json

    result = json.loads(out.read_text())
    settings = ["baseline", "mel_mean_norm", "no_voice_effects", "seconds_2"]
    assert list(result["settings"]) == settings
    assert (tmp_path / "fsc_plain" / "data" / "train_data.csv").is_file()
    for setting in result["settings"].values():
        for split in ("validation", "test"):
            assert 0.0 <= setting[split]["accuracy"] <= 1.0
            assert setting[split]["weakest_voices"]
    assert result["teacher"]["epochs"] == 1.0
    assert (result["teacher"]["label_smoothing"], result["teacher"]["weight_decay"]) == (0.1, 0.1)
    assert (result["teacher"]["heads"], result["teacher"]["seconds"]) == (2, 2)
    assert result["teacher"]["trim_silence"] is True
    test_rows = result["per_voice"]["test"]
    assert len(test_rows) == 2 and all(r["variant"] for r in test_rows)  # quick demo: 2 speakers


def test_a_setting_without_voice_effects_trains_on_its_own_corpus(bench):
    from hf_quads.recipes.demo import DemoArguments

    demo = DemoArguments(data_dir="data/x/")
    plain = bench.setting_demo(demo, bench.SETTINGS["no_voice_effects"])
    assert (plain.data_dir, plain.voice_effects) == ("data/x_plain", 0.0)
    assert bench.setting_demo(demo, bench.SETTINGS["baseline"]).data_dir == "data/x/"
    seed1 = bench.SETTINGS["seed1"]
    assert bench.setting_demo(demo, seed1).seed == 1
    assert bench.setting_corpus(demo, seed1) == demo  # the training seed is not the corpus's


def test_a_setting_changes_the_teachers_shape_and_epochs(bench):
    from hf_quads.recipes.demo import DemoArguments, build_classifier

    demo = DemoArguments()
    assert (demo.heads, demo.teacher_epochs, demo.seconds, demo.trim_silence) == (2, 14, 2, True)
    run = bench.setting_demo(demo, bench.setting_of("heads_4_10_epochs@1"))
    assert (run.heads, run.teacher_epochs, run.seed, run.seconds) == (4, 10, 1, 3)
    assert (run.data_dir, run.teacher_d_model) == (demo.data_dir, demo.teacher_d_model)
    model = build_classifier(run, run.teacher_d_model, run.teacher_layers)
    assert model.config.encoder_attention_heads == 4
    ten = bench.setting_demo(demo, bench.SETTINGS["epochs_10"])  # a change to window_3s
    assert (ten.heads, ten.teacher_epochs, ten.seconds, ten.trim_silence) == (2, 10, 3, False)
    # run_setting featurises with the setting's window and trimming.
    window = bench.setting_demo(demo, bench.SETTINGS["seconds_2"])
    assert (window.seconds, window.teacher_epochs, window.trim_silence) == (2, 13, False)
    old = bench.setting_demo(demo, bench.SETTINGS["window_3s"])
    assert (old.seconds, old.teacher_epochs, old.trim_silence) == (3, 13, False)
    assert not bench.setting_demo(demo, bench.SETTINGS["untrimmed"]).trim_silence
    # The trimmed-window records were taken with 16 epochs: epochs_16 reproduces their baseline.
    sixteen = bench.setting_demo(demo, bench.SETTINGS["epochs_16"])
    assert (sixteen.teacher_epochs, sixteen.seconds, sixteen.trim_silence) == (16, 2, True)
    assert (
        bench.setting_demo(demo, bench.SETTINGS["epochs_14"]).teacher_epochs == demo.teacher_epochs
    )


def test_runs_per_seed_name_their_setting_and_seed(bench, common):
    assert common.run_names(["baseline", "echo", "baseline"]) == ["baseline", "echo"]
    assert common.run_names(["baseline", "no_regularisation"], [0, 2, 0]) == [
        "baseline@0", "baseline@2", "no_regularisation@0", "no_regularisation@2"
    ]  # fmt: skip
    assert common.run_names(["baseline@1", "echo"], [0, 1]) == ["baseline@1", "echo@0", "echo@1"]
    run = bench.setting_of("no_regularisation@2")
    assert run.seed == 2
    assert run.training == {"label_smoothing_factor": 0.0, "weight_decay": 0.0}
    assert run.description == bench.SETTINGS["no_regularisation"].description
    assert bench.setting_of("seed1") == bench.SETTINGS["seed1"]
    with pytest.raises(KeyError):
        bench.setting_of("nope@1")


def test_a_setting_overrides_the_teachers_training_arguments(bench, tmp_path):
    from transformers import TrainingArguments

    from hf_quads.recipes.demo import DemoArguments, teacher_training_args

    demo = DemoArguments()
    default = TrainingArguments(**teacher_training_args(demo, tmp_path))
    assert (default.label_smoothing_factor, default.weight_decay) == (0.1, 0.1)
    assert default.num_train_epochs == demo.teacher_epochs
    plain = teacher_training_args(demo, tmp_path, **bench.SETTINGS["no_regularisation"].training)
    assert (plain["label_smoothing_factor"], plain["weight_decay"]) == (0.0, 0.0)
    smoother = bench.SETTINGS["label_smoothing_0.2"].training
    assert teacher_training_args(demo, tmp_path, **smoother)["weight_decay"] == 0.1


def test_benchmark_rejects_bad_options(bench):
    for argv in (
        ["--parallel", "0"],
        ["--threads", "0"],
        ["--epochs", "0"],
        ["--settings", "x"],
        ["--settings", "baseline@x"],
    ):
        with pytest.raises(SystemExit):
            bench.main(argv)
