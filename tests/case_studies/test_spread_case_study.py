"""The core of case_studies/spread_case_study.py (paper Fig. 3) on test-sized settings."""
import pytest

from case_studies.spread_case_study import CHANGED, run_version
from hetero.cvae import CVAEConfig
from hetero.quantify import QuantifyConfig

CFG = QuantifyConfig(train_samples=600, eval_samples=300, cvae=CVAEConfig(epochs=5))
ENV_KINDS = ("obs", "response", "effect", "objective")


@pytest.mark.parametrize("version", ["v1", "v2", "v3", "v4"])
def test_the_changed_kind_separates_the_groups_and_the_others_do_not(version):
    res = run_version(version, kinds=ENV_KINDS, cfg=CFG, samples=800)
    (changed,) = CHANGED[version]
    assert res[changed]["labels"] == (0, 0, 1, 1)
    assert res[changed]["between"] >= 5 * res[changed]["within"]
    for kind in set(ENV_KINDS) - {changed}:
        assert res[kind]["labels"] == (0, 0, 0, 0), kind
        assert res[kind]["between"] == 0.0, kind


def test_v0_is_one_group_for_every_kind():
    res = run_version("v0", cfg=CFG, samples=1600)
    for kind, entry in res.items():
        assert entry["labels"] == (0, 0, 0, 0), kind


def test_meta_het_grows_from_v5_to_v6():
    v5 = run_version("v5", kinds=("meta",), cfg=CFG, samples=1600)["meta"]
    v6 = run_version("v6", kinds=("meta",), cfg=CFG, samples=1600)["meta"]
    assert v6["between"] > v5["between"]
