"""A full disk at each write of `hetero train` (ENOSPC injected into the nth write of one file):
one `error:` line naming the file and the space needed, exit 1, no temporary file and no half
row left; after space is freed, `--resume` (or, for a config.json
that was never written, the same command again) finishes with metrics.csv identical to an
uninterrupted run's. The checkpoint (torch.save's own error) and metrics-append cases with their
details are in tests/cli/test_safe_run_folders.py."""
from __future__ import annotations

import csv
import errno
import re
import sys
from pathlib import Path

import pytest

from hetero.cli import main
from marl_backends.envs.registry import REGISTRY

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "trainers"))
from fake_env import FakeEnv  # noqa: E402

TRAIN = {
    "mappo": ["--algo", "mappo", "--env", "fake", "--num-envs", "2", "--rollout-steps", "8", "--hidden", "8,8",
              "--ppo-epochs", "1", "--critic-epochs", "1", "--frames", str(6 * 16)],
    "omdpg": ["--algo", "omdpg", "--env", "fake", "--num-envs", "2", "--hidden", "8,8", "--batch-size", "16",
              "--warmup-steps", "20", "--train-interval", "5", "--buffer-size", "100", "--n-step", "2",
              "--frames", str(6 * 10)],
}
COMMON = ["--eval-interval", "4", "--eval-episodes", "2", "--checkpoint-interval", "2", "--no-progress",
          "--no-tensorboard"]
_TMP = re.compile(r"\.(.+)\.tmp\d+")


@pytest.fixture(scope="module", autouse=True)
def fake_env():
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(REGISTRY, "fake", (lambda num_envs, device, seed, continuous, **kw:
                                      FakeEnv(num_envs, seed, 4, continuous, 8), "trainer-test env"))
        yield


def rows(run: Path) -> list[dict]:
    with open(run / "metrics.csv", newline="") as f:
        return [{k: v for k, v in r.items() if not (k.endswith("_s") or k == "fps")} for r in csv.DictReader(f)]


def argv(algo: str, out: Path) -> list[str]:
    return ["train", *TRAIN[algo], *COMMON, "--out-dir", str(out), "--run-name", "run"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    result = {}
    for algo in TRAIN:
        assert main(argv(algo, out / algo)) == 0
        result[algo] = rows(out / algo / "run")
    return result


class FullFile:
    """A file on a full disk: the first write puts a few bytes down, then ENOSPC."""

    def __init__(self, f) -> None:  # noqa: ANN001
        self.f = f

    def write(self, data):  # noqa: ANN001, ANN202
        self.f.write(bytes(data)[:5])
        self.f.flush()
        raise OSError(errno.ENOSPC, "No space left on device")

    def __getattr__(self, name):  # noqa: ANN001, ANN204
        return getattr(self.f, name)

    def __enter__(self):  # noqa: ANN204
        return self

    def __exit__(self, *exc):  # noqa: ANN002, ANN204
        self.f.close()


def fill_disk_at(monkeypatch, name: str, atomic: bool, nth: int) -> list:  # noqa: ANN001
    """The nth write of file ``name`` (``atomic``: through its temporary file; else an append) fails."""
    import marl_backends.trainers.run_io as run_io

    real_open, seen = open, []

    def open_(path, mode="r", *a, **k):  # noqa: ANN001, ANN002, ANN003, ANN202
        f = real_open(path, mode, *a, **k)
        m = _TMP.fullmatch(Path(path).name)
        target, is_tmp = (m.group(1), True) if m else (Path(path).name, False)
        if target == name and is_tmp == atomic and ("w" in mode or "a" in mode):
            seen.append(path)
            if len(seen) == nth:
                return FullFile(f)
        return f

    monkeypatch.setattr(run_io, "open", open_, raising=False)
    return seen


WRITES = {  # id: (algo, file, atomic, nth); checkpoints at iterations 2, 4, 6; eval columns appear at 4
    "config.json": ("mappo", "config.json", True, 1),
    "metrics.csv-created": ("mappo", "metrics.csv", True, 1),
    "metrics.csv-new-columns": ("mappo", "metrics.csv", True, 2),
    "metrics.csv-row": ("mappo", "metrics.csv", False, 3),
    "checkpoint.pt": ("mappo", "checkpoint.pt", True, 2),
    "iter-file": ("mappo", "iter_000004.pt", True, 1),
    "summary.json": ("mappo", "summary.json", True, 1),
    "offpolicy-config.json": ("omdpg", "config.json", True, 1),
    "offpolicy-checkpoint.pt-with-buffer": ("omdpg", "checkpoint.pt", True, 2),
    "offpolicy-metrics.csv-row": ("omdpg", "metrics.csv", False, 2),
}


@pytest.mark.parametrize("point", list(WRITES))
def test_full_disk_at_each_write_is_one_error_line_and_resume_loses_nothing(uninterrupted, tmp_path, capsys,
                                                                             monkeypatch, point):
    algo, name, atomic, nth = WRITES[point]
    run = tmp_path / "run"
    seen = fill_disk_at(monkeypatch, name, atomic, nth)
    capsys.readouterr()
    rc = main(argv(algo, tmp_path))
    monkeypatch.undo()
    out, err = capsys.readouterr()
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(seen) >= nth, f"{point}: the write never happened ({seen})"
    assert rc == 1 and len(errors) == 1 and "Traceback" not in out + err, err
    assert "no space left on the device writing" in errors[0] and name in errors[0] and "needed" in errors[0], errors[0]
    assert not list(tmp_path.rglob(".*.tmp*")), f"{point}: temporary files left"
    if name == "config.json":  # nothing to resume: the error says to run the same command again
        assert "run the same command again" in errors[0], errors[0]
        assert main(argv(algo, tmp_path)) == 0
    else:
        assert f"hetero train --resume {run}" in errors[0], errors[0]
        if name == "metrics.csv" and (run / name).exists():  # no half row: every row whole
            assert all(None not in r.values() and r["iteration"] for r in rows(run)), point
        assert main(["train", "--resume", str(run), "--no-progress"]) == 0, capsys.readouterr().err
    assert rows(run) == uninterrupted[algo], point
    assert (run / "summary.json").exists() and not list(tmp_path.rglob(".*.tmp*"))
