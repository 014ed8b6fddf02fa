"""Shapes of every network family, parametrized over resolutions and options (timm style)."""
import pytest
import torch

from ganforge.models.conditional import MODES, conditional_nets
from ganforge.models.dcgan import DCGANDiscriminator, DCGANGenerator


@pytest.mark.parametrize("resolution", [8, 16, 32])
@pytest.mark.parametrize("upsample", ["transpose", "bilinear"])
def test_dcgan_shapes(resolution, upsample):
    G = DCGANGenerator(8, resolution, 3, width=4, upsample=upsample)
    D = DCGANDiscriminator(resolution, 3, width=4)
    x = G(torch.randn(2, 8))
    assert x.shape == (2, 3, resolution, resolution) and x.abs().max() <= 1
    assert D(x).shape == (2,)


@pytest.mark.parametrize("kind, shape", [("image", (1, 16, 16)), ("points", (2,))])
@pytest.mark.parametrize("mode", MODES)
def test_conditional_nets(kind, shape, mode):
    G, D = conditional_nets(shape, kind, num_classes=5, mode=mode, z_dim=8, width=8, depth=2, max_channels=64)
    y = torch.tensor([0, 1, 4])
    x = G(torch.randn(3, 8), y)
    assert x.shape == (3, *shape)
    out = D(x, y)
    if mode == "acgan":
        assert out[0].shape == (3,) and out[1].shape == (3, 5)
    else:
        assert out.shape == (3,)


def test_labels_change_the_output_of_conditional_generators():
    for mode in MODES:
        G, _ = conditional_nets((1, 8, 8), "image", 4, mode, 8, 8, 2, 64)
        G.eval()
        if mode == "projection":  # class gains start at 1: make them differ, as training would
            for cbn in G.cbns:
                torch.nn.init.normal_(cbn.gain.weight, 1, 0.5)
        z = torch.randn(1, 8).expand(2, -1)
        x = G(z, torch.tensor([0, 3]))
        assert not torch.allclose(x[0], x[1]), mode


def test_projection_discriminator_is_psi_plus_inner_product():
    _, D = conditional_nets((2,), "points", 3, "projection", 4, 8, 2, 64)
    x, y = torch.randn(4, 2), torch.tensor([0, 1, 2, 1])
    phi = D.features(x)
    expected = D.head(phi).flatten() + (D.embed(y) * phi).sum(1)
    assert torch.allclose(D(x, y), expected)
