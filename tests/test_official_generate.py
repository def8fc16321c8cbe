"""Official bundles generate (issue 16): import official-layout files (random weights, small
architectures where the layout allows) -> assemble -> generate a BWF on a real clip through the
CLI, with MMAudio's own conditioning (CLIP + Synchformer) and defaults (25 Euler steps, CFG 4.5)."""
import json

import pytest
import torch
from safetensors.torch import save_file

from engine.bundles import BundleError, load_bundle
from engine.bundles.assemble import assemble
from engine.bundles.registry import WeightRegistry
from engine.codec.bigvgan import BIGVGAN_V1_16K, BigVGANGenerator
from engine.codec.vae import VAE_16K, MelVAE
from engine.features.synchformer import SynchformerConfig, SynchformerFeatures
from engine.media.bwf import frame_exact_length, read_bwf
from engine.media.decode import probe
from engine.pipeline import FoleyPipeline
from mfmjt_plugin.cli import main
from tests.media_factory import make_video
from tests.test_weight_registry import network_pth

# a CLIP of the official kind (ViT, quick GELU) small enough for a test; 384-px frames make a
# 6 x 6 patch grid as they make 27 x 27 for the official ViT-H-14; text tokens as the tiny preset
TINY_CLIP = {"embed_dim": 32, "quick_gelu": True,
             "vision_cfg": {"image_size": 384, "layers": 1, "width": 32, "head_width": 16,
                            "patch_size": 64},
             "text_cfg": {"context_length": 8, "vocab_size": 49408, "width": 32, "heads": 2,
                          "layers": 1}}
TINY_SYNC = SynchformerConfig(embed_dim=16, depth=1, num_heads=1, mlp_ratio=2)


def _random_state(module: torch.nn.Module, seed: int, std: float = 0.02) -> dict:
    gen = torch.Generator().manual_seed(seed)
    return {k: (torch.randn(v.shape, generator=gen) * std if v.is_floating_point() else v)
            for k, v in module.state_dict().items()}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """A weight registry holding network `tiny`, VAE v1-16, BigVGAN v1 16k, Synchformer and CLIP
    files in the official layouts, imported as a studio would."""
    import open_clip.model
    root = tmp_path_factory.mktemp("official")
    registry = WeightRegistry(root / "registry")
    path, _ = network_pth(root)
    registry.import_file(path, kind="network", name="tiny")
    vae = _random_state(MelVAE(VAE_16K), 1)
    torch.save(vae, root / "v1-16.pth")
    registry.import_file(root / "v1-16.pth", kind="vae", name="v1-16")
    vocoder = BigVGANGenerator(BIGVGAN_V1_16K)
    torch.save(_random_state(vocoder, 2, std=0.05), root / "best_netG.pt")
    registry.import_file(root / "best_netG.pt", kind="vocoder", name="bigvgan_v1_16k")
    # Synchformer's file holds the audio branch too; only vfeat_extractor.* is kept
    sync = _random_state(SynchformerFeatures(TINY_SYNC), 3)
    sync["afeat_extractor.proj.weight"] = torch.zeros(2, 2)
    torch.save(sync, root / "synchformer_state_dict.pth")
    registry.import_file(root / "synchformer_state_dict.pth", kind="synchformer",
                         name="synchformer")
    torch.manual_seed(4)
    save_file({k: v.contiguous() for k, v in open_clip.model.CLIP(**TINY_CLIP).state_dict().items()},
              str(root / "clip.safetensors"))
    registry.import_file(root / "clip.safetensors", kind="clip", name="dfn5b")
    bundle = assemble(registry, "tiny", root / "bundle", clip_config=TINY_CLIP)
    movie = make_video(root / "clip.mp4", frames=60, width=160, height=96)  # 2.4 s at 25 fps
    return {"registry": registry, "bundle": bundle, "movie": movie, "root": root}


def test_assembled_bundle_records_its_encoders_and_mmaudio_defaults(stack):
    manifest = load_bundle(stack["bundle"]).manifest
    encoders = manifest["encoders"]
    assert encoders["kind"] == "mmaudio" and encoders["version"] == 1
    assert encoders["clip"] == {"kind": "open_clip", "model": "custom", "config": TINY_CLIP,
                                "file": "clip.safetensors"}
    assert encoders["sync"]["config"]["embed_dim"] == 16 and encoders["sync"]["config"]["depth"] == 1
    assert manifest["defaults"] == {"guidance": 4.5, "mode": "standard", "steps": 25}
    assert set(manifest["files"]) >= {"clip.safetensors", "synchformer.safetensors"}


def test_generate_a_bwf_on_a_real_clip_with_mmaudio_defaults(stack, tmp_path, capsys):
    out = tmp_path / "takes"
    assert main(["generate", str(stack["movie"]), "--bundle", str(stack["bundle"]),
                 "--out", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["settings"] == {"guidance": 4.5, "mode": "standard", "steps": 25}
    take = read_bwf(report["takes"][0])
    info = probe(stack["movie"])
    assert take.sample_rate == 48000
    assert take.samples.shape[1] == frame_exact_length(round(info.duration * 48000), info.frame_rate)
    assert torch.isfinite(torch.from_numpy(take.samples)).all()


def test_the_picture_and_the_prompt_reach_the_network_through_clip_and_synchformer(stack):
    """MMAudio's feature shapes; another stretch of picture or another prompt gives other
    features and so, from the same noise, another take."""
    from fractions import Fraction
    pipeline = FoleyPipeline(stack["bundle"])
    assert pipeline.encoder.name == "mmaudio"
    first = pipeline.video_features(stack["movie"], Fraction(0), Fraction(2))
    later = pipeline.video_features(stack["movie"], Fraction(2, 5), Fraction(2))
    assert first.clip.shape == (16, 32)  # 8 fps x 2 s, CLIP embed_dim
    assert first.sync.shape == (40, 16)  # 50 frames at 25 fps: 5 segments of 16 (stride 8) x 8
    assert not torch.equal(first.clip, later.clip) and not torch.equal(first.sync, later.sync)
    prompt, empty = (pipeline.encoder.encode_text([t]) for t in ("glass breaking", ""))
    assert prompt.shape == (1, 8, 32) and not torch.equal(prompt, empty)
    settings = {"guidance": 4.5, "mode": "standard", "steps": 2}
    noise = pipeline.noise(0, 0, pipeline.network.config.lengths(2.0).latent)
    takes = [pipeline.sample_latents([f], t, None, noise, settings)
             for f, t in ((first, empty), (later, empty), (first, prompt))]
    assert not torch.allclose(takes[0], takes[1]) and not torch.allclose(takes[0], takes[2])


def test_a_bundle_without_its_encoders_is_refused_with_the_command_that_fixes_it(stack, tmp_path):
    registry = WeightRegistry(tmp_path / "registry")
    for entry in stack["registry"].entries():
        if entry.kind not in ("clip",):
            registry.import_file(stack["registry"].path_of(entry), kind=entry.kind, name=entry.name)
    bundle = assemble(registry, "tiny", tmp_path / "no_clip")
    with pytest.raises(BundleError, match=r"has no CLIP image and text encoder.*`mfmjt weights "
                                          r"import open_clip_pytorch_model.bin --kind clip --name "
                                          r"dfn5b`.*`mfmjt weights assemble --preset tiny --out "
                                          r"NEW_FOLDER`"):
        FoleyPipeline(bundle)
    assert main(["generate", str(stack["movie"]), "--bundle", str(bundle), "--out",
                 str(tmp_path / "takes")]) == 1
    assert not (tmp_path / "takes").exists()


def test_encoders_of_other_sizes_or_another_layout_version_are_refused(stack, tmp_path):
    import shutil
    wrong = dict(TINY_CLIP, embed_dim=24)
    import open_clip.model
    save_file({k: v.contiguous() for k, v in open_clip.model.CLIP(**wrong).state_dict().items()},
              str(tmp_path / "clip24.safetensors"))
    registry = WeightRegistry(tmp_path / "registry")
    for entry in stack["registry"].entries():
        source = tmp_path / "clip24.safetensors" if entry.kind == "clip" \
            else stack["registry"].path_of(entry)
        registry.import_file(source, kind=entry.kind, name=entry.name)
    with pytest.raises(ValueError, match=r"clip dfn5b in the weight registry does not fit the "
                                         r"encoder architecture \(key "):
        assemble(registry, "tiny", tmp_path / "b1", clip_config=TINY_CLIP)
    assert not (tmp_path / "b1").exists()
    bundle = assemble(registry, "tiny", tmp_path / "b2", clip_config=wrong)
    with pytest.raises(BundleError, match=r"features of sizes \(clip, sync, text, text tokens\) "
                                          r"\(24, 16, 32, 8\), the network expects \(32, 16, 32, 8\)"):
        FoleyPipeline(bundle)
    newer = tmp_path / "newer"
    shutil.copytree(stack["bundle"], newer)
    manifest = json.loads((newer / "manifest.json").read_text())
    manifest["encoders"]["version"] = 2
    (newer / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="MMAudio encoders of layout version 2; this engine "
                                          "reads version 1"):
        FoleyPipeline(newer)


def test_text_to_audio_without_a_moving_picture(stack, tmp_path, capsys):
    """No media, audio-only media, a still image: MMAudio's text-to-audio (the learned empty
    picture), takes as long as asked (or as the sound), no preview movie."""
    import cv2
    import numpy as np
    from tests.media_factory import make_audio_only
    still = tmp_path / "still.png"
    cv2.imwrite(str(still), np.full((96, 160, 3), 120, np.uint8))
    sound = make_audio_only(tmp_path / "temp.m4a", seconds=2.4)
    cases = [([], "2", "rain-on-a-tin-roof_foley", 2.0),
             ([str(still)], "2", "still_foley", 2.0),
             ([str(sound)], None, "temp_foley", float(probe(sound).duration))]
    for media, end, stem, seconds in cases:
        out = tmp_path / f"takes_{stem}"
        argv = ["generate", *media, "--prompt", "rain on a tin roof", "--bundle",
                str(stack["bundle"]), "--steps", "2", "--out", str(out), "--json"]
        assert main(argv + (["--end", end] if end else [])) == 0, media
        report = json.loads(capsys.readouterr().out)
        assert report["preview"] is None and report["take_details"][0]["sync_score"] is None
        take = read_bwf(report["takes"][0])
        assert take.samples.shape[1] == frame_exact_length(round(seconds * 48000), 25)
        assert [p.name for p in out.iterdir()] == [f"{stem}_take1_v001.wav"]
    # a still is told from a movie by its codec, not by a missing duration (a raw .h264 has none)
    import av
    from engine.pipeline import has_picture
    raw = tmp_path / "raw.h264"
    with av.open(str(raw), "w", format="h264") as container:
        video = container.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        for k in range(30):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 8 * k, np.uint8), "rgb24")
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
    assert probe(raw).duration == 0 and has_picture(raw)
    assert not has_picture(still) and not has_picture(sound) and not has_picture(None)
    assert has_picture(stack["movie"])
    # best-of ranks by sync with the picture: without one it is refused by name
    assert main(["generate", "--prompt", "rain", "--best-of", "2", "--bundle",
                 str(stack["bundle"]), "--end", "2", "--out", str(tmp_path / "best")]) == 1
    assert capsys.readouterr().err.endswith(
        "error: best-of ranks candidates by their sync with the picture, and this request has "
        "none; ask for takes instead (--best-of)\n")
    assert not (tmp_path / "best").exists()
    # the prompt reaches the network: another prompt, another take from the same seed
    assert main(["generate", "--prompt", "footsteps", "--bundle", str(stack["bundle"]),
                 "--steps", "2", "--end", "2", "--out", str(tmp_path / "other"), "--json"]) == 0
    other = read_bwf(json.loads(capsys.readouterr().out)["takes"][0]).samples
    first = read_bwf(next((tmp_path / "takes_rain-on-a-tin-roof_foley").iterdir())).samples
    assert not np.allclose(first, other)
    # a text-to-audio range shorter than one sync segment, or nothing to generate from, is
    # refused by name; an engine service is not asked (text-to-audio runs in process)
    assert main(["generate", "--prompt", "rain", "--bundle", str(stack["bundle"]), "--end", "0.5",
                 "--out", str(tmp_path / "short")]) == 1
    assert "text-to-audio range 0.500 s is shorter than the model's minimum 0.64 s; select a " \
           "longer range (--start/--end)\n" in capsys.readouterr().err
    assert main(["generate", "--bundle", str(stack["bundle"]), "--end", "2", "--out",
                 str(tmp_path / "short")]) == 1
    assert capsys.readouterr().err.endswith("error: nothing to generate from: no media and no "
                                            "prompt; describe the sound in a prompt (--prompt)\n")
    assert not (tmp_path / "short").exists()
    from engine.errors import UserError
    from engine.jobs import TakeRequest, service_body
    with pytest.raises(UserError, match="text-to-audio \\(no media\\) runs in this process only"):
        service_body(TakeRequest(media=None, out=tmp_path / "svc", prompt="rain"))


def test_mmaudio_weights_start_the_meanflow_fine_tune_exactly_where_mmaudio_is(stack, tmp_path):
    """With the Δ embedder zero, MF-MJT's average velocity is MMAudio's instantaneous one for any
    interval: MeanFlow sampling of the assembled network equals MMAudio's Euler sampling, at
    one step and at several (so the paper's fine-tune starts from MMAudio itself)."""
    from fractions import Fraction

    from engine.sampling import euler_sample, guided_velocity, meanflow_sample, time_grid
    pipeline = FoleyPipeline(stack["bundle"])
    net = pipeline.network
    features = pipeline.video_features(stack["movie"], Fraction(0), Fraction(2))
    cond = net.preprocess_conditions(features.clip[None], features.sync[None],
                                     pipeline.encoder.encode_text(["a door"]))
    empty = net.empty_conditions(1, clip_len=features.clip.shape[0],
                                 sync_len=features.sync.shape[0])
    velocity = guided_velocity(net, cond, empty, omega=4.5, mode="standard")
    noise = pipeline.noise(5, 0, net.config.lengths(2.0).latent)
    with torch.no_grad():
        for steps in (1, 4, 25):
            grid = time_grid(steps)
            assert torch.equal(meanflow_sample(velocity, noise, grid),
                               euler_sample(velocity, noise, grid)), steps


def test_fine_tune_an_assembled_bundle_into_a_one_step_bundle(stack, tmp_path, capsys):
    """`train fit --init <assembled> --recipe meanflow-paper` caches the library with MMAudio's
    codec and encoders, trains, and exports a MeanFlow bundle that generates in one step."""
    from tests.library_factory import make_library, tree_hashes
    from trainer.recipe import RECIPES_DIR
    library = make_library(tmp_path / "library")
    before = tree_hashes(library)
    run = tmp_path / "run"
    # the paper's recipe with a CPU-sized batch (its 512 is 64 per GPU on 8 GPUs)
    recipe = tmp_path / "meanflow-paper.toml"
    recipe.write_text((RECIPES_DIR / "meanflow-paper.toml").read_text()
                      .replace("batch_size = 512", "batch_size = 16", 1))
    assert "batch_size = 16" in recipe.read_text()
    assert main(["train", "fit", "--recipe", str(recipe), "--data", str(library),
                 "--window", "2", "--init", str(stack["bundle"]), "--out", str(run),
                 "--max-steps", "2", "--device", "cpu"]) == 0
    assert "interrupted" not in capsys.readouterr().out
    assert main(["train", "export", "--run", str(run), "--out", str(tmp_path / "mf")]) == 0
    capsys.readouterr()
    tuned = load_bundle(tmp_path / "mf")
    assert tuned.mode == "meanflow" and tuned.manifest["encoders"] == \
        load_bundle(stack["bundle"]).manifest["encoders"]
    assert tuned.manifest["provenance"]["recipe"] == "meanflow-paper"
    assert torch.count_nonzero(tuned.network.dt_embed.mlp[2].weight) > 0  # Δ now learns
    assert main(["generate", str(stack["movie"]), "--bundle", str(tmp_path / "mf"), "--out",
                 str(tmp_path / "takes"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["settings"] == {"guidance": 1.0, "mode": "scaled", "steps": 1}
    assert tree_hashes(library) == before


def test_the_gpu_benchmark_of_the_official_stack_runs_end_to_end_with_tiny_shapes(stack):
    """`make bench` runs this for small_16k and large_44k_v2 on the first CUDA machine; here the
    same code with tiny shapes on the CPU (fp32: no error against fp32)."""
    from engine.benchmark_official import render_official_rows, run_official_case
    row = run_official_case("tiny", stack["movie"], seconds=2.0, repeats=1, device="cpu",
                            clip_config=TINY_CLIP, sync_config=TINY_SYNC)
    assert row["case"] == "official_end_to_end_tiny" and row["device"] == "cpu"
    assert row["network_precision"] == "float32" and row["relative_rms_error_vs_fp32"] == 0.0
    assert row["peak_memory_mb"] is None
    assert all(row[k] > 0 for k in ("features_median_s", "one_step_median_s",
                                    "twentyfive_step_median_s"))
    table = render_official_rows([row])
    assert table[-2].startswith("| tiny (2 s) | cpu | float32 | ") and table[-2].endswith(" | - |")
    # a preset that could not run (e.g. larger than the GPU) is a row saying so, not an abort
    failed = {"case": "official_end_to_end_large_44k_v2", "preset": "large_44k_v2",
              "device": "cuda", "failed": "torch.OutOfMemoryError: CUDA out of memory"}
    table = render_official_rows([row, failed])
    assert table[-2] == ("| large_44k_v2 | cuda | not measured: torch.OutOfMemoryError: CUDA out "
                         "of memory | | | | | | |")
    assert table[-2].count("|") == table[-3].count("|")
