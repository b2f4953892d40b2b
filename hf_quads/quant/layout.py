"""How a weight tensor is cut into quantization groups.

A group shares one codebook (k-means) or one scale and zero point (uniform).

* ``group_size=None``: the whole tensor is one group (per-tensor).
* ``group_size=g``: each row (output channel, ``weight.reshape(shape[0], -1)``;
  embedding: one token's vector) is cut into runs of ``g`` consecutive weights;
  a group never spans two rows. When ``g`` does not divide the row length the
  last group of every row is shorter; in the ``(groups, g)`` layout it is padded
  and :meth:`GroupLayout.valid` marks the real entries. ``g >= row length`` means
  one group per row (per-channel).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["GroupLayout"]


@dataclass(frozen=True)
class GroupLayout:
    """Grouping of a tensor of ``shape``: see the module docstring."""

    shape: tuple[int, ...]
    group_size: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        if self.group_size is not None and (
            isinstance(self.group_size, bool) or int(self.group_size) < 1
        ):
            raise ValueError(
                f"group_size must be a positive integer or None, got {self.group_size!r}"
            )

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def rows(self) -> int:
        return self.shape[0] if self.shape else 1

    @property
    def row_len(self) -> int:
        return self.numel // self.rows if self.rows else 0

    @property
    def group_len(self) -> int:
        """Entries per group in the ``(groups, group_len)`` layout (padding included)."""
        if self.group_size is None:
            return self.numel
        return min(int(self.group_size), self.row_len)

    @property
    def groups_per_row(self) -> int:
        return math.ceil(self.row_len / self.group_len) if self.group_size is not None else 0

    @property
    def num_groups(self) -> int:
        return 1 if self.group_size is None else self.rows * self.groups_per_row

    @property
    def padded(self) -> bool:
        return self.group_size is not None and self.row_len % self.group_len != 0

    def to_groups(self, tensor: torch.Tensor, fill: float | int = 0) -> torch.Tensor:
        """``tensor`` (of :attr:`shape`) as ``(num_groups, group_len)``, padding with ``fill``."""
        if tuple(tensor.shape) != self.shape:
            raise ValueError(f"expected a tensor of shape {self.shape}, got {tuple(tensor.shape)}")
        if self.group_size is None:
            return tensor.reshape(1, -1)
        rows = tensor.reshape(self.rows, self.row_len)
        if self.padded:
            rows = F.pad(rows, (0, self.groups_per_row * self.group_len - self.row_len), value=fill)
        return rows.reshape(self.num_groups, self.group_len)

    def from_groups(self, groups: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`to_groups` (padding dropped)."""
        if self.group_size is None:
            return groups.reshape(self.shape)
        rows = groups.reshape(self.rows, self.groups_per_row * self.group_len)
        if self.padded:
            rows = rows[:, : self.row_len]
        return rows.reshape(self.shape)

    def valid(self, device: torch.device | str | None = None) -> torch.Tensor | None:
        """Boolean ``(num_groups, group_len)`` mask of the real entries, or None without padding."""
        if not self.padded:
            return None
        cols = torch.arange(self.groups_per_row * self.group_len, device=device) < self.row_len
        return cols.reshape(self.groups_per_row, self.group_len).repeat(self.rows, 1)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready description (``shape``, ``group_size``, ``groups``)."""
        return {
            "shape": list(self.shape),
            "group_size": self.group_size,
            "groups": self.num_groups,
        }
