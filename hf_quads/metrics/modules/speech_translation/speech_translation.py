"""Speech translation: corpus chrF, chrF++ and BLEU (sacrebleu), 0-100.

An ``evaluate`` module bundled with hf-quads; load it offline with
``hf_quads.metrics.load_metric("speech_translation")``. The scores come from
``hf_quads.metrics.translation`` (absolute import: evaluate runs this file from its
modules cache, where relative imports do not resolve).
"""

import datasets
import evaluate

from hf_quads.metrics.translation import translation_scores

_DESCRIPTION = """
Corpus-level chrF, chrF++ (chrF with word_order=2) and BLEU from sacrebleu, on a
0-100 scale. chrF++ is the layer-importance score of the iterative pruning recipe
for German, chrF for Chinese; use tokenize="zh" for BLEU on Chinese.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: list of translated segments (str).
    references: one reference per segment (str), or a list of references per segment.
    tokenize: sacrebleu BLEU tokenizer, default "13a".
Returns:
    chrf, chrf_plus_plus, bleu: floats in [0, 100].
Examples:
    >>> metric = hf_quads.metrics.load_metric("speech_translation")
    >>> metric.compute(predictions=["das ist gut"], references=["das ist gut"])["chrf"]
    100.0
"""

_CITATION = """
@inproceedings{popovic-2017-chrf,
  title={chr{F}++: words helping character n-grams},
  author={Popovi{\\'c}, Maja},
  booktitle={Proceedings of the Second Conference on Machine Translation},
  year={2017}
}
@inproceedings{post-2018-call,
  title={A Call for Clarity in Reporting {BLEU} Scores},
  author={Post, Matt},
  booktitle={Proceedings of the Third Conference on Machine Translation},
  year={2018}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class SpeechTranslation(evaluate.Metric):
    """chrF, chrF++ and BLEU of translations."""

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=[
                datasets.Features(
                    {
                        "predictions": datasets.Value("string"),
                        "references": [datasets.Value("string")],
                    }
                ),
                datasets.Features(
                    {
                        "predictions": datasets.Value("string"),
                        "references": datasets.Value("string"),
                    }
                ),
            ],
            reference_urls=["https://github.com/mjpost/sacrebleu"],
        )

    def _compute(self, predictions, references, tokenize="13a"):
        return translation_scores(predictions, references, tokenize=tokenize)
