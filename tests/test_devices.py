"""Device selection (issue 16): auto / cpu / cuda / cuda:N / mps, refused in one line when absent,
before any work; out-of-memory as a user error; the same take on any device from one seed."""
import pytest
import torch

from engine.devices import (is_out_of_memory, network_autocast, out_of_memory_error,
                            resolve_device)
from engine.errors import UserError
from mfmjt_plugin.cli import main
from mfmjt_plugin.demo import DEMO_CLIP

HAS_CUDA = torch.cuda.is_available()


def test_auto_takes_a_gpu_when_there_is_one_else_the_cpu():
    device = resolve_device("auto")
    if HAS_CUDA:
        assert device.type == "cuda"
    elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        assert device.type == "mps"
    else:
        assert device == torch.device("cpu")
    assert resolve_device(None) == device
    assert resolve_device(" CPU ") == torch.device("cpu")


@pytest.mark.skipif(HAS_CUDA, reason="this machine has a CUDA GPU: the refusal cannot be seen")
@pytest.mark.parametrize("name", ["cuda", "cuda:0", "cuda:3"])
def test_cuda_without_cuda_is_refused_naming_the_way_out(name):
    with pytest.raises(UserError, match=rf"device '{name}': this torch sees no CUDA GPU .*choose "
                                        rf"auto or cpu") as info:
        resolve_device(name)
    assert info.value.field == "device"


@pytest.mark.parametrize("name", ["tpu", "gpu", "cuda:x", ""])
def test_unknown_devices_are_refused(name):
    with pytest.raises(UserError, match=r"is not one of auto, cpu, cuda, cuda:N or mps"):
        resolve_device(name)


@pytest.mark.skipif(not HAS_CUDA, reason="no CUDA GPU on this machine (the device tool lends one "
                                         "to some sessions)")
def test_cuda_indices_beyond_the_gpus_are_refused():
    count = torch.cuda.device_count()
    assert resolve_device("cuda") == torch.device("cuda", 0)
    with pytest.raises(UserError, match=rf"there are {count} CUDA GPUs here"):
        resolve_device(f"cuda:{count}")


def test_the_network_runs_in_bf16_only_on_a_cuda_gpu():
    assert network_autocast(torch.device("cpu")) is None
    if HAS_CUDA and torch.cuda.is_bf16_supported():
        assert network_autocast(torch.device("cuda", 0)) is torch.bfloat16


def test_out_of_memory_is_recognised_and_worded_for_the_user():
    assert is_out_of_memory(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"))
    assert is_out_of_memory(RuntimeError("MPS backend out of memory (MPS allocated: 9 GB)"))
    assert not is_out_of_memory(RuntimeError("shape mismatch"))
    assert not is_out_of_memory(ValueError("out of memory"))
    err = out_of_memory_error(torch.device("cuda", 0))
    assert str(err) == ("the CUDA device ran out of memory; try a shorter range or fewer takes (or "
                        "best-of candidates), or the cpu device") and err.field == "device"


@pytest.mark.skipif(HAS_CUDA, reason="this machine has a CUDA GPU: the refusal cannot be seen")
def test_generate_on_a_missing_device_is_one_line_naming_the_option_and_writes_nothing(
        tmp_path, capsys):
    out = tmp_path / "takes"
    assert main(["generate", str(DEMO_CLIP), "--out", str(out), "--device", "cuda"]) == 1
    err = capsys.readouterr().err
    assert err == ("error: device 'cuda': this torch sees no CUDA GPU (driver missing, or a "
                   "CPU-only torch); choose auto or cpu (--device)\n")
    assert not out.exists()
    assert main(["train", "evaluate", "--device", "cuda:1", "--scenes", "2"]) == 1
    assert "this torch sees no CUDA GPU" in capsys.readouterr().err


def test_a_gpu_out_of_memory_during_a_request_is_one_line_and_leaves_nothing(
        tmp_path, capsys, monkeypatch):
    """The allocator's failure is raised where the network runs (a fake: no GPU here)."""
    from engine.jobs import load_pipeline
    pipeline = load_pipeline("starter", device="cpu")

    def exhausted(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
    monkeypatch.setattr(pipeline, "sample_latents", exhausted)
    out = tmp_path / "takes"
    assert main(["generate", str(DEMO_CLIP), "--out", str(out), "--device", "cpu"]) == 1
    assert capsys.readouterr().err.rsplit("\r", 1)[-1].lstrip() == (  # after the cleared bars
        "error: the CPU device ran out of memory; try a shorter range or fewer takes (or best-of "
        "candidates) (--device)\n")
    assert not out.exists()


@pytest.mark.skipif(not HAS_CUDA, reason="no CUDA GPU on this machine (the device tool lends one "
                                         "to some sessions)")
def test_a_seed_gives_the_same_take_on_the_gpu_as_on_the_cpu(tmp_path):
    from engine.jobs import TakeRequest, generate_takes
    from engine.media.bwf import read_bwf
    takes = []
    for device in ("cpu", "cuda"):
        report = generate_takes(TakeRequest(media=DEMO_CLIP, out=tmp_path / device, seed=7,
                                            device=device, preview=False))
        takes.append(read_bwf(report.takes[0].path).samples[0])
    peak = abs(takes[0]).max()
    # bf16 network on the GPU: close to, not equal to, the fp32 CPU take
    assert abs(takes[0] - takes[1]).max() < 0.1 * peak


@pytest.mark.skipif(not HAS_CUDA, reason="no CUDA GPU on this machine (the device tool lends one "
                                         "to some sessions)")
def test_under_torchrun_each_process_takes_its_own_gpu(monkeypatch):
    monkeypatch.setenv("LOCAL_RANK", str(torch.cuda.device_count() - 1))
    assert resolve_device("cuda").index == torch.cuda.device_count() - 1
    assert resolve_device("auto").index == torch.cuda.device_count() - 1
    assert resolve_device("cuda:0").index == 0
