"""marl_backends.memory: estimates from shapes, within 2x of measured peaks, and the up-front refusal
of `hetero train --num-envs`, `--buffer-size` and `hetero quantify --samples` (one error line, exit 2,
the estimate and the flag to change; --ignore-memory-check starts anyway)."""
from __future__ import annotations

import pytest

from hetero.cli import main, pool_shape
from marl_backends import memory
from marl_backends.envs import make_env

GiB = memory.GiB
# Peak RSS growth measured by bench/bench_memory.py (bench/results_memory.json): case -> (settings, bytes)
MEASURED = {
    "train": [({"env": "spread_v4", "E": 2000, "T": 50}, 1_402_880_000),
              ({"env": "pms_15a_3c", "E": 400, "T": 50}, 1_018_437_632)],
    "quantify": [({"env": "spread_v4", "S": 200_000}, 262_717_440),
                 ({"env": "pms_15a_3c", "S": 50_000}, 257_474_560)],
    "replay": [({"env": "spread_v4", "E": 10, "C": 2_000_000}, 3_510_378_496),
               ({"env": "pms_15a_3c", "E": 10, "C": 500_000}, 2_854_371_328)],
}


def shapes(env: str) -> memory.Shapes:
    return memory.Shapes.of(make_env(env, num_envs=1))


@pytest.mark.parametrize("kind", MEASURED)
def test_estimates_are_within_2x_of_the_measured_peaks(kind):
    for p, measured in MEASURED[kind]:
        s = shapes(p["env"])
        est = {"train": lambda: memory.train_bytes(s, p["E"], p["T"]),
               "quantify": lambda: memory.quantify_bytes(s, *pool_shape(p["S"])),
               "replay": lambda: memory.replay_bytes(s, p["C"], p["E"], 10)}[kind]()
        assert measured / 2 <= est <= 2 * measured, (kind, p, est / measured)


def test_estimates_follow_the_shapes():
    s = shapes("spread_v4")
    big = memory.Shapes(**{**vars(s), "obs_dim": 10 * s.obs_dim})
    assert memory.train_bytes(s, 200, 50) > 1.9 * memory.train_bytes(s, 100, 50)
    assert memory.train_bytes(s, 100, 100) > 1.9 * memory.train_bytes(s, 100, 50)
    assert memory.train_bytes(s, 100, 50, num_minibatches=4) < memory.train_bytes(s, 100, 50)
    assert memory.train_bytes(big, 100, 50) > memory.train_bytes(s, 100, 50)
    assert memory.replay_bytes(s, 2_000_000, 10) > 1.9 * memory.replay_bytes(s, 1_000_000, 10)
    assert memory.quantify_bytes(big, 64, 50) > memory.quantify_bytes(s, 64, 50)
    assert memory.available_bytes() > 0  # /proc/meminfo MemAvailable on Linux


def test_check_names_the_flag_the_estimate_and_what_fits():
    est = lambda n: n * 2**20  # noqa: E731 - 1 MiB per unit
    assert memory.check(est, 100, "--num-envs", "x", available=GiB) == 100 * 2**20
    with pytest.raises(ValueError, match=r"--num-envs 4,096 needs about 4\.0 GiB .* more than the 1\.0 GiB "
                                         r"available here; lower --num-envs \(about 512 fits in half of it\), or pass "
                                         r"--ignore-memory-check"):
        memory.check(est, 4096, "--num-envs", "x", available=GiB)
    assert memory.largest_fitting(est, 10 * 2**20, 1000) == 10


@pytest.fixture
def small_machine(monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda device="cpu": 8 * GiB)


@pytest.mark.parametrize("argv, flag", [
    (["train", "--env", "spread_v4", "--num-envs", "100000"], "--num-envs 100,000 needs about"),
    (["train", "--env", "spread_v4", "--algo", "omdpg", "--buffer-size", "100000000"], "--buffer-size 100,000,000"),
    (["quantify", "--env", "spread_v4", "--samples", "1000000000"], "--samples 1,000,000,000 needs about"),
])
def test_sizes_beyond_memory_are_refused_before_anything_is_built(small_machine, capsys, tmp_path, argv, flag):
    out = tmp_path / "out"
    assert main([*argv, "--out-dir" if argv[0] == "train" else "--out", str(out)]) == 2
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if x.startswith("error:")]
    assert len(lines) == 1 and flag in lines[0] and "GiB" in lines[0] and "--ignore-memory-check" in lines[0], err
    assert "8.0 GiB available" in lines[0] and not out.exists()


def test_ignore_memory_check_starts_anyway(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(memory, "available_bytes", lambda device="cpu": 1024)  # a 1 KiB machine
    argv = ["train", "--env", "spread_v4", "--num-envs", "2", "--rollout-steps", "8", "--frames", "16", "--hidden",
            "8,8", "--ppo-epochs", "1", "--critic-epochs", "1", "--eval-episodes", "2", "--no-progress",
            "--no-tensorboard", "--out-dir", str(tmp_path), "--run-name", "r"]
    assert main(argv) == 2 and "--num-envs 2 needs about" in capsys.readouterr().err
    assert main([*argv, "--ignore-memory-check"]) == 0
    assert (tmp_path / "r" / "metrics.csv").exists()
