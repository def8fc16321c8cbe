"""Training the starter codec (issue 14): each part trains, resumes and lands in its own file;
the GAN fine-tune starts from the vocoder; the parts combine into the bundle's codec file."""
import json
import math

import pytest
import torch
from safetensors.torch import load_file

from engine.codec.starter import StarterCodec
from trainer.codec_fit import codec_steps, combine_parts, fit_codec, vae_loss


def _waves(n=4, seconds=1.5):
    t = torch.arange(int(16000 * seconds)) / 16000
    rings = [0.3 * torch.sin(2 * math.pi * f * t) * torch.exp(-t / 0.3) for f in (420, 1160, 2100)]
    noise = 0.1 * torch.randn(len(t), generator=torch.Generator().manual_seed(0))
    return torch.stack(rings + [noise])[:n]


class Constant(torch.nn.Module):
    """A mel front end that returns a chosen mel, whatever the wave."""
    def __init__(self, value):
        super().__init__()
        self.value = value

    def forward(self, wave):
        return self.value


class Fixed(torch.nn.Module):
    """A VAE whose decode returns a chosen mel."""
    def __init__(self, recon):
        super().__init__()
        self.recon = recon

    def encode(self, mel):
        from engine.codec.vae import LatentPosterior
        zeros = torch.zeros(mel.shape[0], 20, mel.shape[2] // 2)
        return LatentPosterior(mean=zeros, logvar=zeros)

    def decode(self, latent):
        return self.recon


def test_each_part_trains_into_its_own_file_and_resumes(tmp_path):
    torch.manual_seed(0)
    logs = []
    fit_codec(_waves(), tmp_path, part="vae", steps=3, batch=2, segment=4096, save_every=2,
              progress=lambda s, n, l: logs.append((s, set(l))))
    assert [s for s, _ in logs] == [1, 2, 3]
    assert logs[0][1] == {"mel_l1", "loud_l1", "partial_l1", "freq_l1", "level_l1",
                          "kl"}
    assert json.loads((tmp_path / "progress.json").read_text()) == {"vae_steps": 3}
    assert set(load_file(str(tmp_path / "vae.safetensors"))) == \
        {f"vae.{k}" for k in StarterCodec().vae.state_dict()}
    resumed = []
    fit_codec(_waves(), tmp_path, part="vae", steps=5, batch=2, segment=4096, resume=True,
              progress=lambda s, n, l: resumed.append(s))
    assert resumed == [4, 5]  # continues after the saved step, not from 0

    for part in ("vocoder-gan", "vocoder-timbre", "vocoder-lines"):
        with pytest.raises(ValueError, match=f"train the vocoder .* before '{part}'"):
            fit_codec(_waves(), tmp_path, part=part, steps=1, batch=2, segment=8192)
    fit_codec(_waves(), tmp_path, part="vocoder", steps=2, batch=2, segment=4096)
    plain = load_file(str(tmp_path / "vocoder.safetensors"))
    fit_codec(_waves(), tmp_path, part="vocoder-timbre", steps=1, batch=2, segment=4096)
    before = load_file(str(tmp_path / "vocoder.safetensors"))
    assert any(not torch.equal(plain[k], before[k]) for k in plain)  # continued those weights
    with pytest.raises(ValueError, match="shorter than vocoder-lines' longest STFT window"):
        fit_codec(_waves(), tmp_path, part="vocoder-lines", steps=1, batch=2, segment=4096)
    lines_logs = []
    fit_codec(_waves(), tmp_path, part="vocoder-lines", steps=1, batch=2, segment=8192,
              progress=lambda s, n, l: lines_logs.append(l))
    lined = load_file(str(tmp_path / "vocoder.safetensors"))
    assert any(not torch.equal(before[k], lined[k]) for k in before)  # continued them again
    assert set(lines_logs[0]) == {"stft", "mel_l1"}
    before = lined
    gan_logs = []
    fit_codec(_waves(), tmp_path, part="vocoder-gan", steps=1, batch=2, segment=4096,
              progress=lambda s, n, l: gan_logs.append(l))
    assert set(gan_logs[0]) == {"adv", "fm", "d", "mel_l1", "stft"}
    after = load_file(str(tmp_path / "vocoder.safetensors"))
    assert any(not torch.equal(before[k], after[k]) for k in before)  # it fine-tuned those weights
    assert (tmp_path / "discriminators.safetensors").exists()
    # the parts ran as separate processes writing one progress file: none clobbered another
    assert json.loads((tmp_path / "progress.json").read_text()) == \
        {"vae_steps": 5, "vocoder_steps": 2, "vocoder-timbre_steps": 1, "vocoder-lines_steps": 1,
         "vocoder-gan_steps": 1}


def test_the_parts_combine_into_a_half_precision_codec_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="train the codec's vae first"):
        combine_parts(tmp_path, tmp_path / "codec.safetensors")
    fit_codec(_waves(), tmp_path, part="vae", steps=1, batch=2, segment=4096)
    fit_codec(_waves(), tmp_path, part="vocoder", steps=1, batch=2, segment=4096)
    path = combine_parts(tmp_path, tmp_path / "codec.safetensors")
    state = load_file(str(path))
    assert {v.dtype for v in state.values() if v.is_floating_point()} == {torch.float16}
    codec = StarterCodec()
    codec.load_state_dict(state, strict=True)  # loads back into the float32 modules
    vocoder = load_file(str(tmp_path / "vocoder.safetensors"))
    key = next(k for k in vocoder if k.endswith("pwconv1.weight"))
    assert torch.allclose(codec.state_dict()[key], vocoder[key], rtol=1e-3, atol=1e-4)
    # the file says how far each part trained (the folder's own record of it), and a bundle's
    # manifest copies that
    assert codec_steps(path) == json.loads((tmp_path / "progress.json").read_text()) == \
        {"vae_steps": 1, "vocoder_steps": 1}
    assert codec_steps(tmp_path / "vocoder.safetensors") == {}  # a file without the record


def test_bad_settings_are_refused_before_training(tmp_path):
    with pytest.raises(ValueError, match="choose one of vae, vae-decoder, vocoder, "
                                         "vocoder-timbre, vocoder-lines, vocoder-codec, "
                                         "vocoder-gan"):
        fit_codec(_waves(), tmp_path, part="bigvgan", steps=1)
    with pytest.raises(ValueError, match="multiple of 512"):
        fit_codec(_waves(), tmp_path, part="vae", steps=1, segment=1000)


def test_a_new_vae_standardises_its_input_with_the_training_mels_statistics(tmp_path):
    """Without per-bin statistics the log-mel's common offset (about -3.4 on every bin) is what the
    bias-free layers see, and a steady partial came back 25 dB too quiet (issue 14)."""
    torch.manual_seed(0)
    codec = fit_codec(_waves(), tmp_path, part="vae", steps=1, batch=2, segment=4096)
    mean, std = codec.vae.data_mean.flatten(), codec.vae.data_std.flatten()
    assert mean.shape == (80,) and float(mean.mean()) < -1.5  # log10 power of quiet bins
    assert float(std.min()) >= 1e-3 and float(std.mean()) > 0.1
    # the 420 Hz ring's bin is louder on average than the bins far above all the test tones
    bin_420 = int(codec.mel.mel_basis[:, round(420 / 16000 * 1024)].argmax())
    assert float(mean[bin_420]) > float(mean[-5:].mean()) + 0.5
    # saved with the weights and kept when the training resumes (not measured again)
    saved = load_file(str(tmp_path / "vae.safetensors"))
    assert torch.equal(saved["vae.data_mean"].flatten(), mean)
    resumed = fit_codec(_waves() * 0.01, tmp_path, part="vae", steps=2, batch=2, segment=4096,
                        resume=True)
    assert torch.equal(resumed.vae.data_mean.flatten(), mean)


def test_the_vae_loss_weighs_a_partial_by_itself_not_by_how_few_bins_it_has():
    """A reconstruction that drops one narrow partial costs as much through the partial term as
    one that smears a broadband burst: the glass partial is ~1 % of a crop's bins."""
    floor = torch.full((1, 80, 32), -3.4)
    mel = floor.clone()
    mel[0, 43, :] = 0.0  # one steady partial, 68 dB above the floor (log10 of magnitudes)
    codec = StarterCodec()
    codec.mel = Constant(mel)
    codec.vae = Fixed(floor)  # the partial dropped
    _, dropped = vae_loss(codec, torch.zeros(1, 8192), torch.Generator(), 0.0)
    codec.vae = Fixed(mel)
    _, kept = vae_loss(codec, torch.zeros(1, 8192), torch.Generator(), 0.0)
    assert dropped["partial_l1"] == pytest.approx(3.4)  # the mean error on the partial's bins
    assert dropped["mel_l1"] == pytest.approx(3.4 / 80)  # what a plain L1 sees of it
    assert kept["partial_l1"] == 0.0 and kept["mel_l1"] == 0.0


def test_the_hard_bins_term_is_the_mean_of_each_crops_worst_half_percent_of_bins():
    """A decoded mel right everywhere but for a bounce's tail left too loud: 40 bins (0.5 % of
    the crop's 8000) 1.0 log10 units (20 dB) over and 40 more 0.6 over. The plain L1 sees 0.008
    of it; the hard-bins term is the worst 0.5 % alone (1.0; the worst 1 % would be 0.8); a
    second crop without error halves the batch mean; the term is off unless weighed."""
    mel = torch.full((1, 80, 100), -3.4)
    mel[0, :, 10] = -0.5  # a bounce
    recon = mel.clone()
    recon[0, 0:10, 12:16] += 1.0  # its tail rings on
    recon[0, 0:10, 16:20] += 0.6
    codec = StarterCodec()
    codec.mel = Constant(mel)
    codec.vae = Fixed(recon)
    total_plain, logs = vae_loss(codec, torch.zeros(1, 8192), torch.Generator(), 0.0)
    total_hard, hard_logs = vae_loss(codec, torch.zeros(1, 8192), torch.Generator(), 0.0,
                                     hard_weight=6.0)
    assert logs["mel_l1"] == pytest.approx(0.008)
    assert "hard_l1" not in logs and hard_logs["hard_l1"] == pytest.approx(1.0)
    assert float(total_hard - total_plain) == pytest.approx(6.0 * 1.0, rel=1e-5)
    from trainer.codec_fit import hard_bins_l1
    error = (recon - mel).abs()
    assert float(hard_bins_l1(error, 0.01)) == pytest.approx(0.8)
    assert float(hard_bins_l1(torch.cat([error, torch.zeros(1, 80, 100)]))) == pytest.approx(0.5)
    assert float(hard_bins_l1(torch.arange(10.0).reshape(1, 2, 5), 0.01)) == 9.0  # >= 1 bin


def test_the_decoder_fine_tune_keeps_the_encoder_and_so_the_cached_latents(tmp_path, monkeypatch):
    """`vae-decoder` trains the decoder alone: latents already cached for the network stay what
    the shipped encoder gives."""
    torch.manual_seed(0)
    with pytest.raises(ValueError, match="train the VAE"):
        fit_codec(_waves(), tmp_path, part="vae-decoder", steps=1, batch=2, segment=4096)
    fit_codec(_waves(), tmp_path, part="vae", steps=2, batch=2, segment=4096)
    before = StarterCodec().eval()
    _load = load_file(str(tmp_path / "vae.safetensors"))
    before.vae.load_state_dict({k[4:]: v for k, v in _load.items()})
    import trainer.codec_fit as codec_fit
    weights, plain_loss = [], codec_fit.vae_loss

    def spy(*args, **kwargs):  # the decoder's fine-tune must weigh the worst bins
        weights.append(kwargs.get("hard_weight", 0.0))
        return plain_loss(*args, **kwargs)
    monkeypatch.setattr(codec_fit, "vae_loss", spy)
    logs = []
    after = fit_codec(_waves(), tmp_path, part="vae-decoder", steps=2, batch=2, segment=4096,
                      progress=lambda s, n, l: logs.append(l))
    assert weights == [codec_fit.HARD_WEIGHT] * 2 and codec_fit.HARD_WEIGHT > 0
    assert "hard_l1" in logs[0]
    wave = _waves()[:, :4096]
    with torch.no_grad():
        assert torch.allclose(after.encode(wave).mean, before.encode(wave).mean, atol=1e-6)
        latent = before.encode(wave).mean
        assert not torch.allclose(after.vae.decode(latent), before.vae.decode(latent))
    saved = load_file(str(tmp_path / "vae.safetensors"))
    assert json.loads((tmp_path / "progress.json").read_text()) == \
        {"vae_steps": 2, "vae-decoder_steps": 2}
    # the whole VAE trained on after it would move the encoder under the cached latents
    with pytest.raises(ValueError, match="decoder fine-tuned alone; train more VAE steps in a new"):
        fit_codec(_waves(), tmp_path, part="vae", steps=3, batch=2, segment=4096, resume=True)
    fit_codec(_waves(), tmp_path, part="vae", steps=2, batch=2, segment=4096, resume=True)  # done
    assert any(not torch.equal(saved[k], _load[k]) for k in saved if k.startswith("vae.decoder."))


def test_the_timbre_terms_weigh_a_lost_partial_as_much_as_the_rest_of_the_crop():
    """A crop whose only error is a missing glass partial (1 bin of 80, 10 frames of 100): the
    plain mel L1 hardly sees it; the partial term is the whole error there."""
    from trainer.codec_fit import timbre_l1, timbre_masks
    mel = torch.full((1, 80, 100), -4.0) + 0.01 * torch.randn(1, 80, 100, generator=torch.Generator().manual_seed(0))
    mel[0, 42, 20:30] = 0.3  # a ring 43 dB over the floor
    recon = mel.clone()
    recon[0, 42, 20:30] = -2.0  # rendered 23 dB too quiet
    error = (recon - mel).abs()
    loud, partial = timbre_masks(mel)
    assert partial.sum() == 10 and torch.equal(partial, loud)  # only the ring is loud
    loud_l1, partial_l1 = timbre_l1(error, loud, partial)
    assert float(error.mean()) == pytest.approx(2.3 * 10 / 8000)
    assert float(partial_l1) == pytest.approx(2.3) and float(loud_l1) == pytest.approx(2.3)


def test_the_codec_fine_tune_feeds_the_vocoder_decoded_mels_and_keeps_real_targets(tmp_path):
    """`vocoder-codec`: half of the crops reach the vocoder as the VAE's round trip with the
    bundle's texture (what a take's latents become), the other half as real mels; it refuses to
    run without a trained vocoder and VAE, and continues the vocoder's weights."""
    from trainer.codec_fit import DECODED_TEXTURE, decoded_mels
    torch.manual_seed(0)
    with pytest.raises(ValueError, match="train the vocoder .* before 'vocoder-codec'"):
        fit_codec(_waves(), tmp_path, part="vocoder-codec", steps=1, batch=2, segment=4096)
    fit_codec(_waves(), tmp_path, part="vocoder", steps=1, batch=2, segment=4096)
    with pytest.raises(ValueError, match="train the VAE .* before 'vocoder-codec'"):
        fit_codec(_waves(), tmp_path, part="vocoder-codec", steps=1, batch=2, segment=4096)
    codec = fit_codec(_waves(), tmp_path, part="vae", steps=1, batch=2, segment=4096).eval()
    plain = load_file(str(tmp_path / "vocoder.safetensors"))
    vae = load_file(str(tmp_path / "vae.safetensors"))
    logs = []
    fit_codec(_waves(), tmp_path, part="vocoder-codec", steps=2, batch=2, segment=4096,
              progress=lambda s, n, l: logs.append(l))
    assert set(logs[0]) == {"stft", "mel_l1"} and len(logs) == 2
    after = load_file(str(tmp_path / "vocoder.safetensors"))
    fresh = {f"vocoder.{k}": v for k, v in StarterCodec().vocoder.state_dict().items()}
    moved = sum(float((after[k] - plain[k]).abs().sum()) for k in plain)
    assert 0 < moved < 0.1 * sum(float((fresh[k] - plain[k]).abs().sum()) for k in plain)
    # (it continued the trained vocoder: two small steps from it, not a fresh start)
    assert all(torch.equal(v, load_file(str(tmp_path / "vae.safetensors"))[k])
               for k, v in vae.items())  # the VAE it read is untouched
    assert json.loads((tmp_path / "progress.json").read_text())["vocoder-codec_steps"] == 2

    wave = _waves()[:, :4096]
    real = codec.mel(wave)
    gen = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    assert torch.equal(decoded_mels(codec, real, gen(), share=0.0), real)
    heard = decoded_mels(codec, real, gen(), share=1.0)
    with torch.no_grad():
        round_trip = codec.vae.decode(codec.vae.encode(real).mean)[..., :real.shape[-1]]
    assert heard.shape == real.shape
    texture = heard - round_trip  # what is left is the sampled texture alone
    assert float(texture.std()) == pytest.approx(DECODED_TEXTURE, rel=0.1)
    assert abs(float(texture.mean())) < 0.02
    mixed = decoded_mels(codec, real, torch.Generator().manual_seed(0), share=0.5)
    kinds = [torch.equal(mixed[i], real[i]) for i in range(len(wave))]
    assert set(kinds) == {True, False}  # this draw keeps some crops real...
    for i, same in enumerate(kinds):  # ...and the others are whole round trips
        if not same:
            assert float((mixed[i] - round_trip[i]).std()) == pytest.approx(DECODED_TEXTURE, rel=0.2)


def test_the_codec_fine_tune_trains_the_vocoder_on_what_decoded_mels_gives_it(tmp_path,
                                                                             monkeypatch):
    """The vocoder's input in a `vocoder-codec` step is the mel `decoded_mels` returned, and its
    targets stay the real audio's mel; in a `vocoder-timbre` step its input is the real mel.
    (The first version of the part built the decoded mels and then vocoded the real ones.)"""
    import trainer.codec_fit as codec_fit
    fit_codec(_waves(), tmp_path, part="vae", steps=1, batch=2, segment=4096)
    fit_codec(_waves(), tmp_path, part="vocoder", steps=1, batch=2, segment=4096)
    given, real_mels = [], []
    original_decoded = codec_fit.decoded_mels

    def every_crop_decoded(codec, mel, gen):
        real_mels.append(mel)
        given.append(original_decoded(codec, mel, gen, share=1.0))
        return given[-1]
    monkeypatch.setattr(codec_fit, "decoded_mels", every_crop_decoded)
    heard = []

    class Recording(StarterCodec):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.vocoder.register_forward_pre_hook(lambda module, inputs: heard.append(inputs[0]))
            self.mel.register_forward_hook(lambda module, inputs, output: mels.append(output))
    mels = []
    monkeypatch.setattr(codec_fit, "StarterCodec", Recording)
    fit_codec(_waves(), tmp_path, part="vocoder-codec", steps=1, batch=2, segment=4096)
    assert len(given) == 1 and len(heard) == 1
    assert torch.equal(heard[0], given[0])  # the decoded mels reached the vocoder...
    assert not torch.allclose(heard[0], real_mels[0], atol=0.05)  # ...not the real ones
    assert torch.equal(real_mels[0], mels[0])  # made from the step's real mel, computed once
    heard.clear()
    mels.clear()
    fit_codec(_waves(), tmp_path, part="vocoder-timbre", steps=1, batch=2, segment=4096)
    assert len(heard) == 1 and len(given) == 1  # no decoded mels for the timbre part
    assert torch.equal(heard[0], mels[0])  # its input is the step's real mel
    with pytest.raises(ValueError, match="already fine-tuned on decoded mels"):
        fit_codec(_waves(), tmp_path, part="vocoder", steps=2, batch=2, segment=4096,
                  resume=True)
