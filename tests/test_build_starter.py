"""The starter model's build stages refuse to run out of order with one clear line (the full
build is hours on a CPU: the card records it; here only what must never silently happen)."""
import pytest

from engine.errors import UserError
from trainer.build_starter import SHIPPED_RUN, stage_export, stage_picture


def test_export_without_a_trained_run_names_the_stage_to_run(tmp_path):
    with pytest.raises(UserError, match=rf"{SHIPPED_RUN}: no checkpoint to export; run the "
                                        r"`picture` stage first"):
        stage_export(tmp_path, tmp_path / "bundle")
    with pytest.raises(UserError, match=r"run: no checkpoint to export; run the `fit` stage"):
        stage_export(tmp_path, tmp_path / "bundle", run_name="run")
    assert not (tmp_path / "bundle").exists()


def test_the_picture_fine_tune_needs_a_fitted_network(tmp_path):
    with pytest.raises(UserError, match="no fitted network; run the `fit` stage first"):
        stage_picture(tmp_path)
