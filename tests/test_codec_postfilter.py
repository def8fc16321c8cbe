"""The partial-contrast postfilter (engine/codec/postfilter.py): it sharpens smeared partials,
keeps every frame's energy, leaves the background alone, and a bundle's manifest turns it on."""
import math

import numpy as np
import pytest
import torch

from engine.codec import StarterCodec
from engine.codec.mel import MEL_16K, slaney_mel_basis
from engine.codec.postfilter import PartialContrast, frame_weight, partial_bins, sharpen_partials

BINS, FRAMES = 513, 60
ONSET = 30  # the partial starts at this frame


def smeared_partial_over_a_floor(peak_bin: int = 200, width: float = 2.0) -> torch.Tensor:
    """(1, bins, frames): a quiet floor with random fine structure, and from frame ONSET on a
    partial smeared over its neighbours (a Gaussian of `width` bins), 40 dB over the floor."""
    bins = torch.arange(BINS, dtype=torch.float32)
    generator = torch.Generator().manual_seed(0)
    mag = 1e-3 * (1 + 0.2 * torch.rand(BINS, FRAMES, generator=generator))
    partial = 0.1 * torch.exp(-0.5 * ((bins - peak_bin) / width) ** 2)[:, None]
    mag[:, ONSET:] += partial * BINS ** 0.5
    return mag[None]


def mel_of(mag: torch.Tensor) -> torch.Tensor:
    """The starter codec's log10 mel of STFT magnitudes (MelConverter's last two steps)."""
    return torch.log10(torch.einsum("mk,bkt->bmt", slaney_mel_basis(MEL_16K).float(), mag)
                       .clamp(min=1e-5))


def sharpen(mag: torch.Tensor, contrast: PartialContrast) -> torch.Tensor:
    return sharpen_partials(mag, mel_of(mag), contrast)


def contrast_db(frame: torch.Tensor, peak_bin: int, offset: int) -> float:
    return 20 * math.log10(frame[peak_bin] / frame[peak_bin + offset])


def test_a_smeared_partial_is_sharpened_and_every_frame_keeps_its_energy():
    mag = smeared_partial_over_a_floor()
    out = sharpen(mag, PartialContrast(alpha=2.0))
    frame = ONSET + 10
    before, after = contrast_db(mag[0, :, frame], 200, 4), contrast_db(out[0, :, frame], 200, 4)
    # the Gaussian falls 0.5 * (4 / 2)^2 nepers = 17.4 dB in 4 bins (over the floor's wobble);
    # the filter multiplies each bin by (its level over its 9-bin mean)^alpha: the peak is ~2.4x
    # its mean, 4 bins off is under its mean, so the fall steepens by ~13 dB per unit of alpha
    # (a little less here: the bins' band gate is 0.97, their bands overlap a flat neighbour)
    assert before == pytest.approx(17.35, abs=0.05) and after == pytest.approx(42.98, abs=0.3)
    assert int(out[0, :, frame].argmax()) == 200  # the partial stays where the vocoder put it
    torch.testing.assert_close((out ** 2).sum(1), (mag ** 2).sum(1), rtol=1e-5, atol=0)


def test_the_floor_and_the_attack_are_left_alone():
    """Frames more than 7 (hold) from any sound over the floor, and the attack frame (40 dB over
    the three before it), come out as they went in; the frames held beside the sound and those
    after the attack are filtered."""
    mag = smeared_partial_over_a_floor()
    contrast = PartialContrast(alpha=2.0)
    level = 10 * torch.log10((mag ** 2).sum(1, keepdim=True))
    weight = frame_weight(level, contrast)[0, 0]
    assert torch.equal(weight[:ONSET - 7], torch.zeros(ONSET - 7))
    assert weight[ONSET] == 0.0  # the attack
    # (the floor's and the partial's levels wobble by hundredths of a dB: rises of 1/1000 attack)
    torch.testing.assert_close(weight[ONSET + 1:], torch.ones(FRAMES - ONSET - 1), atol=1e-3, rtol=0)
    # held: the floor next to the sound
    torch.testing.assert_close(weight[ONSET - 7:ONSET], torch.ones(7), atol=1e-2, rtol=0)
    out = sharpen(mag, contrast)
    assert torch.equal(out[0, :, :ONSET - 7], mag[0, :, :ONSET - 7])
    torch.testing.assert_close(out[0, :, ONSET], mag[0, :, ONSET], rtol=1e-6, atol=0)
    # a rise of 5 dB over the loudest of the three frames before is half an attack
    ramp = torch.tensor([[[0.0] * 10 + [40.0] * 10 + [45.0] * 20]])
    assert frame_weight(ramp, contrast)[0, 0, 20] == pytest.approx(0.5)


def test_a_stronger_alpha_sharpens_more_and_the_batch_items_are_independent():
    mag = smeared_partial_over_a_floor()
    other = smeared_partial_over_a_floor(peak_bin=90, width=4.0)
    weak = sharpen(torch.cat([mag, other]), PartialContrast(alpha=1.0))
    strong = sharpen(mag, PartialContrast(alpha=3.0))
    # the log contrast is linear in alpha: 17.4 dB, then +13.1 dB per unit
    assert contrast_db(weak[0, :, ONSET + 10], 200, 4) == pytest.approx(30.16, abs=0.3)
    assert contrast_db(strong[0, :, ONSET + 10], 200, 4) == pytest.approx(55.81, abs=0.3)
    torch.testing.assert_close(weak[1:], sharpen(other, PartialContrast(alpha=1.0)))


def test_only_bins_where_the_mel_shows_a_partial_above_300_hz_are_filtered():
    """The band gate: a band 20 dB (1 log10 unit) over the median of the five around it opens its
    bins fully, a flat mel opens none, and nothing opens below 300 Hz, where the mel's bands
    (30-50 Hz apart) resolve partials and a bouncing ball's pitch glide lives."""
    contrast = PartialContrast(alpha=2.0)
    flat = torch.full((1, 80, 20), -2.0)
    assert torch.equal(partial_bins(flat, contrast), torch.zeros(1, 513, 20))
    basis = slaney_mel_basis(MEL_16K)
    high, low = 50, 5  # bands centred near 2.5 kHz and 220 Hz
    peaked = flat.clone()
    peaked[0, [high, low], :] += 1.0
    gate = partial_bins(peaked, contrast)[0]
    centre_high, centre_low = int(basis[high].argmax()), int(basis[low].argmax())
    # (a centre bin also lies at the edge of a neighbouring, flat band's filter)
    assert torch.allclose(gate[centre_high], torch.ones(20), atol=0.05)
    assert torch.equal(gate[centre_low], torch.zeros(20))
    far = [k for k in range(513) if basis[:, k].argmax() not in range(high - 1, high + 2)]
    assert gate[far].max() == 0.0
    half = flat.clone()
    half[0, high, :] += 0.5
    assert torch.allclose(partial_bins(half, contrast)[0, centre_high], torch.full((20,), 0.5),
                          atol=0.03)
    with pytest.raises(ValueError, match="80-band"):
        partial_bins(torch.zeros(1, 64, 20), contrast)


@pytest.mark.parametrize("bad", [{"alpha": 0.0}, {"alpha": 5.0}, {"alpha": 1.0, "width_bins": 8},
                                 {"alpha": 1.0, "hold_frames": 1}])
def test_settings_out_of_range_are_refused(bad):
    with pytest.raises(ValueError, match="partial contrast"):
        PartialContrast(**bad)


def test_the_vocoder_is_unchanged_without_it_and_its_partials_ring_with_it(monkeypatch):
    """On the shipped codec's weights, the ring after a struck synth plate (the evaluator's
    tonality: peak over median of the spectrum 20-300 ms after the event) rises with the filter;
    without it the vocoder is the Vocos head's own arithmetic on the mel with its ends held."""
    from engine.bundles import load_bundle
    from engine.bundles.components import load_codec
    from engine.paths import starter_bundle_dir
    from trainer.synth.audio import synthesize
    from trainer.synth.scene import sample_scene
    from trainer.timbre import event_tonality
    codec = load_codec(load_bundle(starter_bundle_dir()))
    scene = next(s for s in (sample_scene(i, namespace="test:postfilter") for i in range(50))
                 if s.sound_class == "metal")
    real = torch.from_numpy(synthesize(scene)).float()[None]
    vocoder = codec.vocoder
    with torch.no_grad():
        mel = codec.mel(real)
        vocoder.partial_contrast = None
        plain = vocoder(mel)[0, 0].numpy()
        vocoder.partial_contrast = PartialContrast(alpha=2.0)
        sharp = vocoder(mel)[0, 0].numpy()
        # the filter's branch repeats the Vocos head's arithmetic: with the filter made the
        # identity it must give the head's own output exactly (a vocos upgrade would show here)
        import engine.codec.vocos_vocoder as vocos_vocoder
        monkeypatch.setattr(vocos_vocoder, "sharpen_partials", lambda mag, mel, contrast, valid: mag)
        assert np.array_equal(vocoder(mel)[0, 0].numpy(), plain)
        edge, hop = vocoder.edge_frames, vocoder.hop  # the mel's ends repeated, then cut off
        padded = torch.nn.functional.pad(mel, (edge, edge), mode="replicate")
        head = vocoder.head(vocoder.backbone(padded)).clamp(-1, 1)[0].numpy()
        assert np.array_equal(plain, head[edge * hop: len(head) - edge * hop])
        # never in train mode (neither filter nor edges): the codec trainer's losses see the
        # Vocos head itself
        vocoder.partial_contrast = PartialContrast(alpha=2.0)
        vocoder.train()
        assert np.array_equal(vocoder(mel)[0, 0].numpy(),
                              vocoder.head(vocoder.backbone(mel)).clamp(-1, 1)[0].numpy())
        vocoder.eval()
    ring_real, ring_plain, ring_sharp = (np.mean(event_tonality(w, scene.events))
                                        for w in (real[0].numpy(), plain, sharp))
    assert ring_sharp > ring_plain + 5 and ring_sharp < ring_real + 10


def test_a_version_1_codec_has_no_vocos_head_to_filter():
    with pytest.raises(ValueError, match="Vocos"):
        StarterCodec(1, partial_contrast=2.0)


def test_a_bundles_manifest_turns_it_on_and_bad_values_are_refused(tmp_path):
    from engine.bundles import BundleError, load_bundle, save_bundle
    from engine.bundles.components import STARTER_CODEC_FILE, load_codec, starter_descriptors
    from engine.model import build_network
    network = build_network("tiny", clip_dim=64, sync_dim=72, text_dim=64, text_seq_len=16,
                            training_duration=2.0)
    state = StarterCodec().state_dict()

    def bundle(name, **codec_entries):
        codec, encoders = starter_descriptors(20251123, mel_noise=0.1)
        return save_bundle(tmp_path / name, network, preset="tiny", encoders=encoders,
                           codec={**codec, **codec_entries}, extra={STARTER_CODEC_FILE: state})
    codec, _ = starter_descriptors(20251123, partial_contrast=2.0)
    assert codec["partial_contrast"] == 2.0
    assert "partial_contrast" not in starter_descriptors(20251123)[0]  # off: absent, as before
    assert load_codec(load_bundle(bundle("plain"))).vocoder.partial_contrast is None
    on = load_codec(load_bundle(bundle("on", partial_contrast=1.5))).vocoder.partial_contrast
    assert on == PartialContrast(alpha=1.5)
    for name, bad in (("neg", -1.0), ("big", 6.0), ("text", "2"), ("bool", True), ("null", None)):
        with pytest.raises(BundleError, match=r"partial_contrast .* must be a number from 0 "
                                              r"\(off\) to 4; fix the manifest or re-export"):
            load_codec(load_bundle(bundle(name, partial_contrast=bad)))
    codec_v1 = {k: v for k, v in starter_descriptors(20251123)[0].items() if k != "mel_noise"}
    old = save_bundle(tmp_path / "v1", build_network(
        "tiny", latent_dim=8, clip_dim=64, sync_dim=72, text_dim=64, text_seq_len=16,
        training_duration=2.0), preset="tiny", encoders=starter_descriptors(20251123)[1],
        codec={**codec_v1, "version": 1, "partial_contrast": 2.0},
        extra={STARTER_CODEC_FILE: StarterCodec(1).state_dict()})
    with pytest.raises(BundleError, match="needs the Vocos vocoder of codec version 2.*remove"):
        load_codec(load_bundle(old))


def test_the_postfilter_reads_partials_from_the_mean_mel_not_its_sampled_texture(monkeypatch):
    """With `mel_noise`, the vocoder hears the textured mel but the band gate reads the decoded
    mean: noise on a flat mel would otherwise open the gate at random (0.13 on average above
    600 Hz at the shipped 0.1) and sharpen noise-like sounds."""
    contrast = PartialContrast(alpha=2.0)
    flat = torch.full((1, 80, 40), -2.0)
    noisy = flat + 0.1 * torch.randn(flat.shape, generator=torch.Generator().manual_seed(0))
    assert partial_bins(noisy, contrast).mean() > 0.05  # what the texture alone would open
    torch.manual_seed(0)
    codec = StarterCodec(mel_noise=0.1, partial_contrast=2.0).eval()
    seen = []
    import engine.codec.vocos_vocoder as vocos_vocoder
    real = vocos_vocoder.sharpen_partials

    def spy(mag, gate_mel, contrast, valid):
        seen.append(gate_mel)
        return real(mag, gate_mel, contrast, valid)
    monkeypatch.setattr(vocos_vocoder, "sharpen_partials", spy)
    with torch.no_grad():
        codec.vocode(flat, torch.Generator().manual_seed(3))
    edge = codec.vocoder.edge_frames  # the mean mel, its ends continued (the vocoder's edges)
    assert len(seen) == 1 and torch.equal(seen[0], torch.full((1, 80, 40 + 2 * edge), -2.0))


def test_held_ends_change_neither_the_clips_floor_nor_its_attacks():
    """The vocoder holds a clip's first and last frames beyond its ends (`edge_frames`): the
    postfilter's background floor (a quantile over frames) and its attack test must stay the
    clip's own. A take that starts on a contact is an attack at its first frame, as before the
    ends were held; the held frames are not sharpened."""
    contrast = PartialContrast(alpha=2.0)
    clip = torch.full((1, 1, 60), -60.0)
    clip[..., :20] = -10.0  # the take starts on a loud contact
    clip[..., 40:50] = -20.0
    edge = 29
    held = torch.cat([clip[..., :1].expand(-1, -1, edge), clip,
                      clip[..., -1:].expand(-1, -1, edge)], dim=-1)
    alone = frame_weight(clip, contrast)
    weight = frame_weight(held, contrast, valid=(edge, edge + 60))
    assert torch.equal(weight[..., edge: edge + 60], alone)
    assert torch.all(weight[..., :edge] == 0) and torch.all(weight[..., edge + 60:] == 0)
    assert alone[0, 0, 0] == 0.0  # the first frame is an attack: not sharpened
    # read without `valid`, the held copies would make the first frame no attack at all
    assert frame_weight(held, contrast)[0, 0, edge] > 0.5
