"""SLURP: scenario/action/intent accuracy, entity span F1 and SLU-F1.

An ``evaluate`` module bundled with hf-quads; load it offline with
``hf_quads.metrics.load_metric("slurp")``. The scores come from
``hf_quads.metrics.slurp``, which follows the official SLURP scorer
(pswietojanski/slurp, scripts/evaluation). Absolute import: evaluate runs this file
from its modules cache, where relative imports do not resolve.
"""

import datasets
import evaluate

from hf_quads.metrics.slurp import slurp_scores

_DESCRIPTION = """
The SLURP scorer: scenario, action and intent (scenario_action) accuracy; entity
span F1 (exact type and filler); word- and char-distance F1 and SLU-F1, which give
partial credit to entity fillers by normalised word / character edit distance.
All scores in [0, 1], micro-averaged unless average="macro".
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: list of {"scenario": str, "action": str,
        "entities": [{"type": str, "filler": str}, ...]}.
    references: the gold examples in the same form, aligned with predictions
        (turn SLURP jsonl records into it with hf_quads.metrics.slurp_example;
        gold fillers are the lower-cased token surfaces of the span).
    average: "micro" (default, as the official scorer) or "macro".
Returns:
    scenario_accuracy, action_accuracy, intent_accuracy, scenario_f1, action_f1,
    intent_f1, entity_{precision,recall,f1}, word_{precision,recall,f1},
    char_{precision,recall,f1}, slu_{precision,recall,f1}.
Examples:
    >>> metric = hf_quads.metrics.load_metric("slurp")
    >>> ex = {"scenario": "alarm", "action": "set",
    ...       "entities": [{"type": "time", "filler": "seven am"}]}
    >>> metric.compute(predictions=[ex], references=[ex])["slu_f1"]
    1.0
"""

_CITATION = """
@inproceedings{bastianelli-etal-2020-slurp,
  title={{SLURP}: A Spoken Language Understanding Resource Package},
  author={Bastianelli, Emanuele and Vanzo, Andrea and Swietojanski, Pawel and Rieser, Verena},
  booktitle={Proceedings of EMNLP},
  year={2020}
}
"""

_EXAMPLE = {
    "scenario": datasets.Value("string"),
    "action": datasets.Value("string"),
    "entities": [{"type": datasets.Value("string"), "filler": datasets.Value("string")}],
}


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Slurp(evaluate.Metric):
    """The official SLURP scores on simplified examples."""

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": _EXAMPLE, "references": _EXAMPLE}),
            reference_urls=["https://github.com/pswietojanski/slurp"],
        )

    def _compute(self, predictions, references, average="micro"):
        return slurp_scores(references, predictions, average=average)
