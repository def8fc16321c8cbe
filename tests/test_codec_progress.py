"""The codec folder's progress file under parts that train in parallel processes
(`build_starter all`): no part's count is ever put back by another's save."""
import multiprocessing as mp

from trainer.codec_fit import _read_meta, _record_progress


def _saves(folder, part, count):
    """Save `count` steps; exit 1 if a save of this part was ever undone by the other's."""
    for step in range(1, count + 1):
        _record_progress(folder, part, step)
        if _read_meta(folder).get(f"{part}_steps", 0) < step:
            raise SystemExit(1)


def test_parallel_parts_never_lose_each_others_counts(tmp_path):
    context = mp.get_context("spawn")
    workers = [context.Process(target=_saves, args=(tmp_path, part, 300))
               for part in ("vae-decoder", "vocoder")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert [w.exitcode for w in workers] == [0, 0]
    assert _read_meta(tmp_path) == {"vae-decoder_steps": 300, "vocoder_steps": 300}
