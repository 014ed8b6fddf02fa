import math

import torch

from ganforge.losses import get_loss


def test_minimax_and_nonsaturating_match_their_closed_forms():
    real, fake = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -3.0])
    d_of = torch.sigmoid
    expected_d = -(torch.log(d_of(real)).mean() + torch.log(1 - d_of(fake)).mean())
    for name in ("minimax", "nonsaturating"):
        assert torch.allclose(get_loss(name).d(real, fake), expected_d, atol=1e-6)
    # minimax G minimises log(1 - D(G(z))); non-saturating G minimises -log D(G(z))
    assert torch.allclose(get_loss("minimax").g(fake), torch.log(1 - d_of(fake)).mean(), atol=1e-6)
    assert torch.allclose(get_loss("nonsaturating").g(fake), -torch.log(d_of(fake)).mean(), atol=1e-6)


def test_minimax_generator_gradient_saturates_when_d_is_confident():
    fake = torch.tensor([-8.0], requires_grad=True)  # D is sure the sample is fake
    get_loss("minimax").g(fake).backward()
    g_mm = fake.grad.abs().item()
    fake.grad = None
    get_loss("nonsaturating").g(fake).backward()
    assert g_mm < 1e-3 and math.isclose(fake.grad.abs().item(), 1.0, rel_tol=1e-3)
