"""Dense bit packing of integer codes of any width from 1 to 8 bits.

The packed stream is little-endian at the bit level: code ``i`` occupies bits
``[i * bits, (i + 1) * bits)`` of the stream, bit ``j`` of the stream is bit
``j % 8`` of byte ``j // 8``. ``n`` codes take exactly ``ceil(n * bits / 8)``
bytes; the unused high bits of the last byte are zero.

Eight codes of ``bits`` bits fill exactly ``bits`` bytes, so both directions work
on blocks of eight codes held in one int64 (at most 7 * 8 = 56 bits): no Python
loop over elements, and only a loop over the ``bits`` bytes of a block.
"""

from __future__ import annotations

import math

import torch

__all__ = ["pack_bits", "packed_numel", "unpack_bits"]


def _check_bits(bits: int) -> None:
    if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 8:
        raise ValueError(f"bits must be an integer from 1 to 8, got {bits!r}")


def packed_numel(numel: int, bits: int) -> int:
    """Bytes taken by ``numel`` codes of ``bits`` bits: ``ceil(numel * bits / 8)``."""
    _check_bits(bits)
    if numel < 0:
        raise ValueError(f"numel must be >= 0, got {numel}")
    return math.ceil(numel * bits / 8)


def pack_bits(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """Pack ``codes`` (uint8, any shape, each below ``2**bits``) into a 1-D uint8 stream.

    Returns ``ceil(codes.numel() * bits / 8)`` bytes on the device of ``codes``.
    Raises ``ValueError`` when ``codes`` is not uint8 or holds a value that does
    not fit in ``bits`` bits.
    """
    _check_bits(bits)
    if codes.dtype != torch.uint8:
        raise ValueError(f"codes must be a uint8 tensor, got {codes.dtype}")
    flat = codes.reshape(-1)
    n = flat.numel()
    if n and bits < 8 and int(flat.max()) >= 1 << bits:
        raise ValueError(f"codes hold {int(flat.max())}, which does not fit in {bits} bits")
    if bits == 8:
        return flat.clone()
    nbytes = packed_numel(n, bits)
    blocks = -(-n // 8)
    padded = torch.zeros(blocks * 8, dtype=torch.int64, device=flat.device)
    padded[:n] = flat
    shifts = torch.arange(8, device=flat.device, dtype=torch.int64) * bits
    words = (padded.view(blocks, 8) << shifts).sum(dim=1)  # disjoint bit fields: sum == or
    byte_shifts = torch.arange(bits, device=flat.device, dtype=torch.int64) * 8
    stream = ((words[:, None] >> byte_shifts) & 0xFF).to(torch.uint8).reshape(-1)
    return stream[:nbytes].clone()


def unpack_bits(packed: torch.Tensor, bits: int, numel: int) -> torch.Tensor:
    """Inverse of :func:`pack_bits`: the first ``numel`` codes of ``packed`` as a 1-D uint8 tensor.

    Raises ``ValueError`` when ``packed`` is not a uint8 tensor of exactly
    ``ceil(numel * bits / 8)`` bytes.
    """
    _check_bits(bits)
    if packed.dtype != torch.uint8:
        raise ValueError(f"packed must be a uint8 tensor, got {packed.dtype}")
    flat = packed.reshape(-1)
    expected = packed_numel(numel, bits)
    if flat.numel() != expected:
        raise ValueError(
            f"{numel} codes of {bits} bits take {expected} bytes, but packed holds {flat.numel()}"
        )
    if bits == 8:
        return flat.clone()
    blocks = -(-numel // 8)
    padded = torch.zeros(blocks * bits, dtype=torch.int64, device=flat.device)
    padded[: flat.numel()] = flat
    byte_shifts = torch.arange(bits, device=flat.device, dtype=torch.int64) * 8
    words = (padded.view(blocks, bits) << byte_shifts).sum(dim=1)
    shifts = torch.arange(8, device=flat.device, dtype=torch.int64) * bits
    codes = ((words[:, None] >> shifts) & ((1 << bits) - 1)).to(torch.uint8).reshape(-1)
    return codes[:numel].clone()
