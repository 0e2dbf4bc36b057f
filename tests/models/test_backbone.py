import torch

from mmalign.models.backbone import Backbone, with_head


def test_encoders_prepend_head_and_fusion_shapes():
    torch.manual_seed(0)
    bb = Backbone(6, 5, output_dim=3, d_model=8, n_heads=2).eval()
    x = torch.randn(2, 7, 6)
    mask = torch.arange(7)[None] < torch.tensor([[7], [3]])
    z = bb.encode_source(x, mask)
    assert z.shape == (2, 8, 8)
    zv = bb.encode_victim(torch.randn(2, 7, 5), mask)
    out = bb.predict_fused(z, mask, zv, mask)
    assert out.shape == (2, 3)
    assert with_head(mask).shape == (2, 8)


def test_padding_content_does_not_change_outputs():
    torch.manual_seed(0)
    bb = Backbone(4, 4, output_dim=1, d_model=8, n_heads=2).eval()
    x = torch.randn(2, 6, 4)
    mask = torch.arange(6)[None] < torch.tensor([[6], [2]])
    x2 = x.clone()
    x2[1, 2:] = 50.0
    a = bb.predict_fused(bb.encode_source(x, mask), mask, bb.encode_victim(x, mask), mask)
    b = bb.predict_fused(bb.encode_source(x2, mask), mask, bb.encode_victim(x2, mask), mask)
    torch.testing.assert_close(a, b)


def test_zero_length_sequence_stays_finite():
    bb = Backbone(4, 4, output_dim=1, d_model=8, n_heads=2).eval()
    x = torch.zeros(1, 3, 4)
    mask = torch.zeros(1, 3, dtype=torch.bool)
    out = bb.predict_fused(bb.encode_source(x, mask), mask, bb.encode_victim(x, mask), mask)
    assert torch.isfinite(out).all()
