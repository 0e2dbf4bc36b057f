import pytest
import torch

from mmalign.models.adl import AlignmentFitter, banded_impute, fit_loss, ot_fit_targets
from mmalign.ot.band import dense_to_band


def lengths_mask(lengths, seq_len):
    return torch.arange(seq_len)[None] < torch.as_tensor(lengths)[:, None]


def random_band_plan(lengths, seq_len, window, generator):
    """A dense (B, L, L) nonnegative matrix that is zero outside the window and the valid block."""
    b = len(lengths)
    dense = torch.rand(b, seq_len, seq_len, generator=generator, dtype=torch.float64)
    i = torch.arange(seq_len)
    inside = (i[:, None] - i[None, :]).abs() <= window
    mask = lengths_mask(lengths, seq_len)
    valid = inside[None] & mask[:, :, None] & mask[:, None, :]
    return dense * valid


@pytest.mark.parametrize("window", [0, 1, 3, 9])
def test_banded_impute_matches_dense_product(window):
    g = torch.Generator().manual_seed(0)
    b, seq_len, d = 3, 7, 5
    weights_dense = random_band_plan([7, 4, 1], seq_len, window, g)  # (B, M=j, L=i)
    z = torch.randn(b, seq_len, d, generator=g, dtype=torch.float64)
    # column band of weights: w[b, j, k] = weights_dense[b, j, j + k - K]
    w = dense_to_band(weights_dense, window)
    expected = weights_dense @ z  # (B, M, d)
    torch.testing.assert_close(banded_impute(w, z, window), expected)


@pytest.mark.parametrize("convention", ["column", "row"])
@pytest.mark.parametrize("window", [1, 2, 6])
def test_ot_fit_targets_match_dense_reference(convention, window):
    g = torch.Generator().manual_seed(1)
    lengths, seq_len = [6, 3, 5], 6
    plan_dense = random_band_plan(lengths, seq_len, window, g)  # (B, L=i source, M=j victim)
    mask = lengths_mask(lengths, seq_len)
    plan = dense_to_band(plan_dense.transpose(1, 2), window)  # column band (victim rows)
    centres = torch.arange(seq_len).expand(len(lengths), -1)
    target, valid = ot_fit_targets(plan, mask, mask, centres, window, convention)
    if convention == "column":
        cols = plan_dense.transpose(1, 2)  # (B, j, i)
        ref = cols / cols.sum(-1, keepdim=True).clamp(min=1e-300)
    else:
        ref = plan_dense / plan_dense.sum(-1, keepdim=True).clamp(min=1e-300)
    ref_band = dense_to_band(ref, window)
    torch.testing.assert_close(target, ref_band)
    # valid rows sum to one; padded rows are zero
    sums = target.sum(-1)
    torch.testing.assert_close(sums[mask], torch.ones_like(sums[mask]))
    assert (target[~mask] == 0).all()
    assert not valid[~mask].any()


def test_fitter_outputs_distributions_on_valid_offsets_only():
    torch.manual_seed(0)
    fitter = AlignmentFitter(d_model=8, window=2)
    z = torch.randn(3, 6, 8)
    mask = lengths_mask([6, 3, 1], 6)
    w = fitter(z, mask)
    assert w.shape == (3, 6, 5)
    torch.testing.assert_close(w.sum(-1)[mask], torch.ones(int(mask.sum())))
    assert (w[~mask] == 0).all()
    # offsets pointing before the start or past the length get no weight
    assert (w[:, 0, :2] == 0).all()
    assert (w[1, 2, 3:] == 0).all()
    assert (w[2, 0] == torch.tensor([0, 0, 1.0, 0, 0])).all()


def test_fitter_ignores_padding_content():
    torch.manual_seed(0)
    fitter = AlignmentFitter(d_model=4, window=1)
    z = torch.randn(2, 5, 4)
    mask = lengths_mask([5, 3], 5)
    z2 = z.clone()
    z2[1, 3:] = 1e3  # garbage after the length
    torch.testing.assert_close(fitter(z, mask), fitter(z2, mask))


def test_fit_loss_mse_is_masked_and_eq13_matches_hand_value():
    pred = torch.zeros(1, 2, 3)
    target = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 2.0, 99.0]]])
    valid = torch.tensor([[[True, True, True], [True, True, False]]])
    assert fit_loss(pred, target, valid).item() == pytest.approx((1 + 4) / 5)
    # Eq. 13: sqrt(sum sq) / (W * l) with W = 3 offsets, l = 2 valid steps
    assert fit_loss(pred, target, valid, "eq13").item() == pytest.approx(5**0.5 / (3 * 2))
    with pytest.raises(ValueError, match="fit_normalisation"):
        fit_loss(pred, target, valid, "l1")
