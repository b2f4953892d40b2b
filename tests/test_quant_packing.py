"""Dense bit packing of 1..8-bit codes (hf_quads.quant.packing)."""

from __future__ import annotations

import math

import pytest
import torch

from hf_quads.quant import pack_bits, packed_numel, unpack_bits


@pytest.mark.parametrize("bits", range(1, 9))
@pytest.mark.parametrize("numel", [0, 1, 7, 8, 9, 61, 1000, 4099])
def test_round_trip_all_widths(bits: int, numel: int) -> None:
    gen = torch.Generator().manual_seed(bits * 10_000 + numel)
    codes = torch.randint(0, 2**bits, (numel,), generator=gen, dtype=torch.uint8)
    packed = pack_bits(codes, bits)
    assert packed.dtype == torch.uint8 and packed.dim() == 1
    assert packed.numel() == math.ceil(numel * bits / 8) == packed_numel(numel, bits)
    assert torch.equal(unpack_bits(packed, bits, numel), codes)


@pytest.mark.parametrize("bits", range(1, 9))
def test_layout_is_lsb_first_bit_stream(bits: int) -> None:
    gen = torch.Generator().manual_seed(bits)
    codes = torch.randint(0, 2**bits, (13,), generator=gen, dtype=torch.uint8)
    stream = "".join(format(int(c), f"0{bits}b")[::-1] for c in codes)  # LSB first per code
    stream += "0" * (-len(stream) % 8)
    expected = [int(stream[i : i + 8][::-1], 2) for i in range(0, len(stream), 8)]
    assert pack_bits(codes, bits).tolist() == expected


def test_extreme_values_and_shapes() -> None:
    for bits in range(1, 9):
        codes = torch.full((3, 5), 2**bits - 1, dtype=torch.uint8)
        packed = pack_bits(codes, bits)
        assert torch.equal(unpack_bits(packed, bits, 15).reshape(3, 5), codes)
        # unused high bits of the last byte stay zero
        used = (15 * bits) % 8
        if used:
            assert int(packed[-1]) >> used == 0


def test_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match="1 to 8"):
        pack_bits(torch.zeros(4, dtype=torch.uint8), 9)
    with pytest.raises(ValueError, match="1 to 8"):
        pack_bits(torch.zeros(4, dtype=torch.uint8), 0)
    with pytest.raises(ValueError, match="uint8"):
        pack_bits(torch.zeros(4, dtype=torch.int64), 4)
    with pytest.raises(ValueError, match="does not fit in 3 bits"):
        pack_bits(torch.tensor([8], dtype=torch.uint8), 3)
    with pytest.raises(ValueError, match="take 2 bytes"):
        unpack_bits(torch.zeros(3, dtype=torch.uint8), 4, 4)
    with pytest.raises(ValueError, match="uint8"):
        unpack_bits(torch.zeros(2, dtype=torch.int32), 4, 4)
