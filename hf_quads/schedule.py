"""The multi-stage phase plan of QUADS training: parsed once, queried by step.

A plan is a sequence of phases with relative lengths, e.g.
``"distill:3,quant:3,distill:6,quant:8"``. Lengths are proportions of the run, so
the same plan fits a 20-epoch run (where it is exactly the QUADS reference: distil
on epochs 1-3 and 7-12, quantize on 4-6 and 13-20) and a 2-minute smoke test.

Phases:

* ``distill`` - the student learns from the teacher (``L_dis``), full precision;
* ``quant``   - weights are clustered/quantized and retrained (``L_quant``);
* ``joint``   - both losses every step (``gamma * L_dis + (1 - gamma) * L_quant``),
  quantized forward.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Phase = Literal["distill", "quant", "joint"]
PHASES: tuple[str, ...] = ("distill", "quant", "joint")

#: Named plans. ``quads`` is the reference schedule of the QUADS paper (20 epochs).
NAMED_PLANS: dict[str, str] = {
    "quads": "distill:3,quant:3,distill:6,quant:8",
    "joint": "joint:1",
    "distill": "distill:1",
    "quant": "quant:1",
}

_SEGMENT = re.compile(r"^\s*(?P<phase>[a-z]+)\s*(?::\s*(?P<length>\d+(?:\.\d+)?)\s*)?$")


class ScheduleError(ValueError):
    """A schedule string that cannot be parsed."""


@dataclass(frozen=True)
class Segment:
    """One phase and its share of the run, as ``[start, end)`` fractions of all steps."""

    phase: Phase
    start: float
    end: float


@dataclass(frozen=True)
class PhasePlan:
    """A parsed schedule: consecutive segments covering the fraction range [0, 1]."""

    segments: tuple[Segment, ...]
    source: str

    @classmethod
    def parse(cls, schedule: str) -> PhasePlan:
        """Parse a named plan (``quads``, ``joint``, ``distill``, ``quant``) or ``phase:length,...``."""
        if not isinstance(schedule, str) or not schedule.strip():
            raise ScheduleError("schedule must be a plan name or a list like 'distill:3,quant:3'")
        text = NAMED_PLANS.get(schedule.strip(), schedule)
        parts: list[tuple[str, float]] = []
        for raw in text.split(","):
            match = _SEGMENT.match(raw)
            if match is None:
                raise ScheduleError(
                    f"cannot read {raw.strip()!r} in schedule {schedule!r}: write phase:length, "
                    f"e.g. 'distill:3,quant:3,distill:6,quant:8', or one of {sorted(NAMED_PLANS)}"
                )
            phase, length = match["phase"], float(match["length"] or 1)
            if phase not in PHASES:
                raise ScheduleError(
                    f"unknown phase {phase!r} in schedule {schedule!r}; phases are {list(PHASES)}"
                )
            if length <= 0:
                raise ScheduleError(f"phase {phase!r} in schedule {schedule!r} has length 0")
            parts.append((phase, length))
        total = sum(length for _, length in parts)
        segments, done = [], 0.0
        for phase, length in parts:
            segments.append(Segment(phase, done / total, (done + length) / total))  # type: ignore[arg-type]
            done += length
        return cls(tuple(segments), schedule)

    @property
    def phases(self) -> set[str]:
        """The distinct phases the plan uses."""
        return {s.phase for s in self.segments}

    @property
    def quantizes(self) -> bool:
        """Whether any phase trains with quantized weights."""
        return bool(self.phases & {"quant", "joint"})

    def boundaries(self, max_steps: int) -> list[tuple[int, Phase]]:
        """``(first_step, phase)`` for each segment of a run of ``max_steps`` optimizer steps.

        Segments that round to no step at all are dropped; consecutive segments of the
        same phase are merged.
        """
        if max_steps <= 0:
            raise ValueError(f"max_steps must be positive, got {max_steps}")
        out: list[tuple[int, Phase]] = []
        for seg in self.segments:
            start, end = round(seg.start * max_steps), round(seg.end * max_steps)
            if end <= start:
                continue
            if out and out[-1][1] == seg.phase:
                continue
            out.append((start, seg.phase))
        return out

    def phase_at(self, step: int, max_steps: int) -> Phase:
        """The phase of optimizer step ``step`` (0-based) in a run of ``max_steps`` steps."""
        current = self.boundaries(max_steps)[0][1]
        for start, phase in self.boundaries(max_steps):
            if step >= start:
                current = phase
        return current

    def describe(self, max_steps: int) -> str:
        """Human-readable plan, e.g. ``distill 0-149 | quant 150-299``."""
        bounds = self.boundaries(max_steps)
        ends = [start for start, _ in bounds[1:]] + [max_steps]
        return " | ".join(
            f"{phase} {start}-{end - 1}" for (start, phase), end in zip(bounds, ends, strict=True)
        )
