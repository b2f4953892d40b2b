"""Intent classification: accuracy and macro-F1 (the QUADS paper's two columns).

An ``evaluate`` module bundled with hf-quads; load it offline with
``hf_quads.metrics.load_metric("intent_classification")``. The scores come from
``hf_quads.metrics.classification`` (absolute import: evaluate runs this file from
its modules cache, where relative imports do not resolve).
"""

import datasets
import evaluate

from hf_quads.metrics.classification import accuracy, macro_f1

_DESCRIPTION = """
Accuracy (fraction of exact matches) and macro-F1 (unweighted mean of per-class F1,
sklearn's f1_score(average="macro")) of predicted intent labels, both in [0, 1].
By default macro-F1 averages over the classes present in references or
predictions; pass `labels` to average over a fixed class list instead.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: predicted class ids (int) or names (str).
    references: gold class ids or names, aligned with predictions.
    labels: optional list of the classes macro-F1 averages over.
Returns:
    accuracy: float in [0, 1].
    macro_f1: float in [0, 1].
Examples:
    >>> metric = hf_quads.metrics.load_metric("intent_classification")
    >>> metric.compute(predictions=[0, 1, 1], references=[0, 1, 2])
    {'accuracy': 0.6666666666666666, 'macro_f1': 0.5555555555555555}
"""

_CITATION = """
@inproceedings{biswas2025quads,
  title={{QUADS}: {QUA}ntized Distillation Framework for Efficient Speech Language Understanding},
  author={Biswas, Subrata and Khan, Mohammad Nur Hossain and Islam, Bashima},
  booktitle={Interspeech},
  year={2025}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class IntentClassification(evaluate.Metric):
    """Accuracy and macro-F1 of intent predictions."""

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=[
                datasets.Features(
                    {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
                ),
                datasets.Features(
                    {
                        "predictions": datasets.Value("string"),
                        "references": datasets.Value("string"),
                    }
                ),
            ],
        )

    def _compute(self, predictions, references, labels=None):
        return {
            "accuracy": accuracy(predictions, references),
            "macro_f1": macro_f1(predictions, references, labels),
        }
