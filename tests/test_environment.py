"""The installed stack: the core stands without the `export` extra; the extra works where pinned."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_core_does_not_import_the_export_stack():
    code = (
        "import sys, hf_quads, hf_quads.data, hf_quads.metrics, hf_quads.profile, hf_quads.cli\n"
        "import hf_quads.data.synth\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('optimum', 'onnxruntime'))\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.export
def test_export_extra_is_usable():
    from optimum.onnxruntime import ORTModelForAudioClassification, ORTModelForSpeechSeq2Seq
    from optimum.onnxruntime.configuration import AutoQuantizationConfig

    assert ORTModelForAudioClassification and ORTModelForSpeechSeq2Seq
    qconfig = AutoQuantizationConfig.avx512_vnni(is_static=False, per_channel=False)
    assert not qconfig.is_static
