"""The vocoder's STFT loss without phases equals auraloss's own, value and gradient."""
import pytest
import torch
from auraloss.freq import MultiResolutionSTFTLoss

from trainer.codec_fit import _STFT, _STFT_LINES
from trainer.stft_loss import MagnitudeSTFTLoss, multi_resolution_stft_loss


@pytest.mark.parametrize("resolutions", [_STFT, _STFT_LINES], ids=["plain", "lines"])
def test_the_loss_and_its_gradient_are_auralosses(resolutions):
    gen = torch.Generator().manual_seed(0)
    target = torch.randn(3, 1, 16384, generator=gen) * 0.1
    # a prediction near the target, with a silent stretch (the eps clamp matters there)
    guess = target + 0.05 * torch.randn(3, 1, 16384, generator=gen)
    guess[:, :, 4000:6000] = 0.0
    grads, values = [], []
    ours = multi_resolution_stft_loss(**resolutions)
    assert len(ours.stft_losses) == len(resolutions["fft_sizes"])
    assert all(type(each) is MagnitudeSTFTLoss for each in ours.stft_losses)
    for loss in (MultiResolutionSTFTLoss(**resolutions), ours):
        x = guess.clone().requires_grad_()
        value = loss(x, target)
        value.backward()
        values.append(value.detach())
        grads.append(x.grad)
    assert values[0].item() > 0.1  # the two differ: a real loss, not zero on both sides
    torch.testing.assert_close(values[1], values[0], rtol=1e-6, atol=0)
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-5, atol=1e-12)


def test_it_skips_the_phase_only_while_no_phase_term_is_weighed():
    x = torch.randn(2, 4096)
    magnitude, phase = MagnitudeSTFTLoss(512, 128, 512).stft(x)
    assert phase is None and magnitude.shape == (2, 257, 33)
    with_phase = MagnitudeSTFTLoss(512, 128, 512, w_phs=1.0)
    magnitude_2, phase_2 = with_phase.stft(x)
    torch.testing.assert_close(magnitude_2, magnitude)
    torch.testing.assert_close(phase_2, torch.angle(torch.stft(
        x, 512, 128, 512, torch.hann_window(512), return_complex=True)))
