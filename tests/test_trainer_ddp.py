"""torchrun with 2 gloo processes on the CPU equals one process with the same global batch."""
import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from engine.codec import StarterCodec
from engine.features import StarterEncoder
from tests.library_factory import make_library
from tests.test_trainer_loop import starter_sized_network
from trainer.cache import build_cache, load_shards
from trainer.data import scan_library
from trainer.loop import train
from trainer.recipe import load_recipe

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = """
import dataclasses, sys
from pathlib import Path
import torch
from safetensors.torch import save_file
sys.path.insert(0, sys.argv[4])
from tests.test_trainer_loop import starter_sized_network
from trainer.cache import load_shards
from trainer.loop import train
from trainer.recipe import load_recipe
recipe = dataclasses.replace(load_recipe("debug"), steps=4)
network = starter_sized_network()
result = train(network, load_shards(sys.argv[1]), recipe, Path(sys.argv[2]))
if torch.distributed.get_rank() == 0:
    save_file({k: v.contiguous() for k, v in network.state_dict().items()}, sys.argv[3])
torch.distributed.destroy_process_group()
"""


def test_two_process_gloo_matches_one_process(tmp_path):
    library = make_library(tmp_path / "library")
    torch.manual_seed(0)
    build_cache(scan_library(library, window_seconds=2.0), tmp_path / "cache",
                codec=StarterCodec().eval(), encoder=StarterEncoder(), sample_rate=16000)
    script = tmp_path / "ddp_run.py"
    script.write_text(SCRIPT)
    out = tmp_path / "ddp.safetensors"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                    "--nproc_per_node", "2", str(script), str(tmp_path / "cache"),
                    str(tmp_path / "run_ddp"), str(out), str(ROOT)],
                   check=True, cwd=ROOT, env=env, capture_output=True, timeout=300)
    single = starter_sized_network()
    train(single, load_shards(tmp_path / "cache"),
          dataclasses.replace(load_recipe("debug"), steps=4), tmp_path / "run_single")
    ddp = load_file(str(out))
    reference = single.state_dict()
    worst = max((ddp[k] - reference[k]).abs().max().item() for k in reference)
    changed = max((reference[k] - starter_sized_network().state_dict()[k]).abs().max().item()
                  for k in reference)
    # same global batch and randomness; only the order of the gradient sums differs
    print(f"ddp vs single max abs diff {worst:.2e}; change from init {changed:.2e}")
    assert worst < 1e-5 < changed, (worst, changed)
    assert sorted(p.name for p in (tmp_path / "run_ddp").iterdir()) == ["ckpt-00000004.safetensors"]
