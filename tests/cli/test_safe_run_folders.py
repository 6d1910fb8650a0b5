"""Run folders a lab can share: checkpoints load weights-only (a hostile pickle is refused by every
entry point and runs nothing; format-1 checkpoints are refused with the fix, then converted), a
checkpoint of another run is refused by --resume, one writer per run folder (a stale lock does not
block; a dead writer's temp files go), --run-name refused atomically, a full disk is one error
line, TensorBoard resumes without duplicate points, and the small flag / folder slips."""
from __future__ import annotations

import csv
import errno
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from hetero.cli import main
from hetero.errors import UsageError
from marl_backends.envs.registry import REGISTRY

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "trainers"))
from fake_env import FakeEnv  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
ON = ["--algo", "mappo", "--env", "fake", "--num-envs", "2", "--rollout-steps", "8", "--hidden", "8,8",
      "--ppo-epochs", "1", "--critic-epochs", "1", "--eval-interval", "2", "--eval-episodes", "2", "--no-progress",
      "--no-tensorboard"]
OFF = ["--algo", "omdpg", "--env", "fake", "--num-envs", "2", "--hidden", "8,8", "--batch-size", "16",
       "--warmup-steps", "20", "--train-interval", "5", "--eval-interval", "2", "--eval-episodes", "2",
       "--buffer-size", "100", "--n-step", "2", "--no-progress", "--no-tensorboard"]
PER_IT = {"mappo": 16, "omdpg": 10}


@pytest.fixture(scope="module", autouse=True)
def fake_env():
    """``--env fake``: the trainer tests' tiny env, registered for the command line."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(REGISTRY, "fake", (lambda num_envs, device, seed, continuous, **kw:
                                      FakeEnv(num_envs, seed, 4, continuous, 8), "trainer-test env"))
        yield


def train(out: Path, name: str, iters: int, algo: str = "mappo", *extra: str) -> Path:
    flags = ON if algo == "mappo" else OFF
    assert main(["train", *flags, "--frames", str(iters * PER_IT[algo]), "--out-dir", str(out), "--run-name", name,
                 *extra]) == 0
    return out / name


def rows(run: Path) -> list[dict]:
    with open(run / "metrics.csv", newline="") as f:
        return [{k: v for k, v in r.items() if not (k.endswith("_s") or k == "fps")} for r in csv.DictReader(f)]


def one_error(capsys, rc: int, code: int, *texts: str) -> str:  # noqa: ANN001
    out, err = capsys.readouterr()
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert rc == code, err
    assert len(errors) == 1 and "Traceback" not in out + err, err
    for text in texts:
        assert text in errors[0], errors[0]
    return errors[0]


class Payload:
    """Unpickling it creates ``marker`` (what a hostile checkpoint's os.system would do)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):  # noqa: ANN204
        return (open, (self.marker, "w"))


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """A real on-policy run whose checkpoint.pt and iter_*.pt were replaced by pickles that create a
    marker file: torch.save'd ones and a bare pickle.dump (iter_000001.pt)."""
    out = tmp_path_factory.mktemp("hostile")
    run = train(out, "run", 3, "mappo", "--checkpoint-interval", "1")
    marker = out / "PWNED"
    for f in [run / "checkpoint.pt", *sorted((run / "checkpoints").glob("iter_*.pt"))]:
        if f.name == "iter_000001.pt":
            with open(f, "wb") as fh:
                pickle.dump({"version": 2, "trainer": Payload(marker)}, fh)
        else:
            torch.save({"version": 2, "config": {}, "trainer": Payload(marker)}, f)
    off = out / "off"  # an off-policy run folder (config.json) with a hostile checkpoint
    (off / "checkpoints").mkdir(parents=True)
    (off / "config.json").write_text(json.dumps({"kind": "offpolicy-v1", "run": {"env": "fake", "algo": "omdpg"},
                                                 "config": {"seed": 0}}))
    shutil.copy(run / "checkpoint.pt", off / "checkpoint.pt")
    return run, off, marker


ENTRY_POINTS = {
    "evaluate": lambda run, off, tmp: ["evaluate", str(run), "--episodes", "2"],
    "evaluate iter file": lambda run, off, tmp: ["evaluate", str(run / "checkpoints" / "iter_000001.pt")],
    "train --resume": lambda run, off, tmp: ["train", "--resume", str(run)],
    "quantify --checkpoint": lambda run, off, tmp: ["quantify", "--env", "fake", "--kind", "policy", "--checkpoint",
                                                    str(run), "--out", str(tmp / "q"), "--no-plots"],
    "quantify --behaviour checkpoint:": lambda run, off, tmp: ["quantify", "--env", "fake", "--behaviour",
                                                               f"checkpoint:{run}", "--out", str(tmp / "q"),
                                                               "--no-plots"],
    "plot --at (torch.save)": lambda run, off, tmp: ["plot", str(run), "--at", "2", "--formats", "png"],
    "plot --at (bare pickle)": lambda run, off, tmp: ["plot", str(run), "--at", "1", "--formats", "png"],
    "off-policy train --resume": lambda run, off, tmp: ["train", "--resume", str(off)],
    "off-policy evaluate": lambda run, off, tmp: ["evaluate", str(off)],
}


@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
def test_hostile_checkpoint_is_refused_and_runs_nothing(hostile, entry, tmp_path, capsys):
    run, off, marker = hostile
    rc = main(ENTRY_POINTS[entry](run, off, tmp_path))
    assert not marker.exists()  # the payload did not run
    one_error(capsys, rc, 2, "refused")


def test_hostile_checkpoint_is_refused_by_load_trainer_and_convert(hostile, capsys):
    from marl_backends.trainers import load_trainer

    run, _, marker = hostile
    for path in (run, run / "checkpoints" / "iter_000002.pt", run / "checkpoints" / "iter_000001.pt"):
        with pytest.raises(UsageError, match="refused"):
            load_trainer(path)
        assert not marker.exists()
    one_error(capsys, main(["convert-checkpoint", str(run)]), 2, "--trust-pickle")
    assert not marker.exists()


def _as_format_1(run: Path) -> None:
    """Rewrite a run's checkpoints as hetero 0.2 wrote them: numpy RNG states pickled as numpy objects."""
    from marl_backends.trainers.safe_checkpoint import load

    for f in [run / "checkpoint.pt", *(run / "checkpoints").glob("iter_*.pt")]:
        obj = {**load(f), "version": 1}
        obj.pop("identity")
        torch.save(obj, f)


def test_format_1_checkpoint_is_refused_with_the_fix_then_converted(tmp_path, capsys):
    full = train(tmp_path, "full", 4, "mappo")
    run = train(tmp_path, "run", 2, "mappo")
    _as_format_1(run)
    capsys.readouterr()
    one_error(capsys, main(["train", "--resume", str(run), "--frames", str(4 * PER_IT["mappo"])]), 2,
              "checkpoint format 1", f"hetero convert-checkpoint {run} --trust-pickle")
    one_error(capsys, main(["convert-checkpoint", str(run)]), 2, "--trust-pickle")
    assert main(["convert-checkpoint", str(run), "--trust-pickle"]) == 0
    assert "converted to format 2" in capsys.readouterr().err
    torch.load(run / "checkpoint.pt", weights_only=True)
    assert main(["train", "--resume", str(run), "--frames", str(4 * PER_IT["mappo"]), "--no-progress"]) == 0
    assert rows(run) == rows(full)  # the numpy RNG state survived the conversion


@pytest.mark.parametrize("algo", ["mappo", "omdpg"])
def test_resume_refuses_a_checkpoint_of_another_run(tmp_path, capsys, algo):
    a = train(tmp_path, "a", 2, algo)
    b = train(tmp_path, "b", 2, algo, "--seed", "1")
    before = {f: (a / f).read_bytes() for f in ("config.json", "metrics.csv")}
    shutil.copy(b / "checkpoint.pt", a / "checkpoint.pt")
    capsys.readouterr()
    one_error(capsys, main(["train", "--resume", str(a), "--frames", str(3 * PER_IT[algo])]), 2,
              "checkpoint of another run", "seed 1", "seed 0")
    assert {f: (a / f).read_bytes() for f in before} == before


@pytest.mark.parametrize("algo", ["mappo", "omdpg"])
def test_second_writer_is_refused_and_a_dead_writers_lock_and_temp_files_are_not_in_the_way(tmp_path, capsys, algo):
    from marl_backends.trainers.run_lock import RunLock

    run = train(tmp_path, "run", 2, algo)
    frames = str(3 * PER_IT[algo])
    with RunLock(run):  # another writer holds the folder
        one_error(capsys, main(["train", "--resume", str(run), "--frames", frames]), 2,
                  f"PID {os.getpid()}", "being written by another process")
    assert len(rows(run)) == 2
    # a writer killed with the lock held, leaving temp files of its checkpoint and metrics writes
    code = (f"import os, signal; from marl_backends.trainers.run_lock import RunLock; RunLock({str(run)!r}).acquire(); "
            f"os.kill(os.getpid(), signal.SIGKILL)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT)
    assert proc.returncode == -signal.SIGKILL
    dead = (run / ".lock").read_text().strip()
    stale = [run / f".checkpoint.pt.tmp{dead}", run / f".metrics.csv.tmp{dead}",
             run / "checkpoints" / f".iter_000004.pt.tmp{dead}"]
    live = run / f".metrics.csv.tmp{os.getppid()}"  # a live process's: left alone
    for f in [*stale, live]:
        f.write_bytes(b"partial")
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--frames", frames, "--no-progress"]) == 0
    assert "removed 3 temporary file(s) left by a writer that died" in capsys.readouterr().err
    assert not any(f.exists() for f in stale) and live.exists()
    assert len(rows(run)) == 3


def test_a_zombie_writers_temp_files_are_removed(tmp_path):
    """A writer that died but was not reaped (a killed sweep's worker whose new parent does not
    reap, as in a container without an init) still answers kill(pid, 0): it is dead all the same."""
    from marl_backends.trainers.run_lock import pid_alive, remove_stale_temp_files

    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    stat = Path(f"/proc/{zombie.pid}/stat")
    for _ in range(500):  # exited, not yet reaped (we do not wait on it)
        if stat.read_text().rsplit(")", 1)[1].split()[0] == "Z":
            break
        time.sleep(0.01)
    try:
        assert not pid_alive(zombie.pid)
        assert pid_alive(os.getppid())
        (tmp_path / "checkpoints").mkdir()
        left = tmp_path / "checkpoints" / f".iter_000002.pt.tmp{zombie.pid}"
        left.write_bytes(b"partial")
        assert remove_stale_temp_files(tmp_path) == [left] and not left.exists()
    finally:
        zombie.wait()


@pytest.mark.parametrize("algo", ["mappo", "omdpg"])
def test_existing_run_name_is_refused_atomically(tmp_path, capsys, monkeypatch, algo):
    """The folder appears between the early check and the creation (a second `train --run-name X`
    started at the same time): refused, not renamed X_2."""
    import marl_backends.offpolicy.cli as off_cli
    import marl_backends.trainers.cli as on_cli

    module, name = (on_cli, "make_trainer") if algo == "mappo" else (off_cli, "build")
    real = getattr(module, name)

    def racing(*a, **k):  # noqa: ANN002, ANN003, ANN202
        (tmp_path / "x").mkdir(exist_ok=True)
        return real(*a, **k)

    monkeypatch.setattr(module, name, racing)
    flags = ON if algo == "mappo" else OFF
    rc = main(["train", *flags, "--frames", str(PER_IT[algo]), "--out-dir", str(tmp_path), "--run-name", "x"])
    one_error(capsys, rc, 2, "--run-name x", "already exists")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x"]


@pytest.mark.parametrize("algo", ["mappo", "omdpg"])
def test_out_dir_that_is_a_file_names_the_flag(tmp_path, capsys, algo):
    f = tmp_path / "file"
    f.write_text("")
    flags = ON if algo == "mappo" else OFF
    for extra in ([], ["--run-name", "r"]):
        rc = main(["train", *flags, "--frames", str(PER_IT[algo]), "--out-dir", str(f), *extra])
        one_error(capsys, rc, 2, f"--out-dir {f}", "is a file")


def test_evaluate_the_checkpoints_subfolder(tmp_path, capsys):
    run = train(tmp_path, "run", 2, "mappo", "--checkpoint-interval", "2")
    capsys.readouterr()
    assert main(["evaluate", str(run / "checkpoints"), "--episodes", "2"]) == 0, capsys.readouterr().err
    assert "iteration 2" in capsys.readouterr().out


def test_full_disk_in_torch_save_keeps_the_previous_checkpoint(tmp_path, capsys, monkeypatch):
    from marl_backends.trainers import load_trainer

    real, calls = torch.save, []

    def full(obj, f, *a, **k):  # noqa: ANN001, ANN002, ANN003, ANN202
        calls.append(f)
        if len(calls) == 3:  # iteration 4's checkpoint.pt: a part is written, then the disk is full
            f.write(b"PK\x03\x04 partial")
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 4352 vs 4240")
        return real(obj, f, *a, **k)

    monkeypatch.setattr(torch, "save", full)
    rc = main(["train", *ON, "--frames", str(4 * PER_IT["mappo"]), "--checkpoint-interval", "2", "--out-dir",
               str(tmp_path), "--run-name", "run"])
    run = tmp_path / "run"
    one_error(capsys, rc, 1, "no space left on the device writing", str(run / "checkpoint.pt"), "needed",
              "the previous checkpoint.pt is intact")
    monkeypatch.undo()
    assert load_trainer(run).iteration == 2
    assert not [f for f in run.rglob(".*.tmp*")]


def test_full_disk_in_a_metrics_write_leaves_no_half_row(tmp_path, capsys, monkeypatch):
    import marl_backends.trainers.run_io as run_io

    class FullFile:
        def __init__(self, f) -> None:  # noqa: ANN001
            self.f = f

        def write(self, data):  # noqa: ANN001, ANN202
            self.f.write(data[:5])
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name):  # noqa: ANN001, ANN204
            return getattr(self.f, name)

        def __enter__(self):  # noqa: ANN204
            return self

        def __exit__(self, *exc):  # noqa: ANN002, ANN204
            self.f.close()

    real_open, n = open, []

    def open_(path, mode="r", *a, **k):  # noqa: ANN001, ANN002, ANN003, ANN202
        f = real_open(path, mode, *a, **k)
        if Path(path).name == "metrics.csv" and "a" in mode:
            n.append(path)
            if len(n) == 2:  # the third row
                return FullFile(f)
        return f

    monkeypatch.setattr(run_io, "open", open_, raising=False)
    rc = main(["train", *ON, "--frames", str(4 * PER_IT["mappo"]), "--out-dir", str(tmp_path), "--run-name", "run"])
    run = tmp_path / "run"
    one_error(capsys, rc, 1, "no space left on the device writing", str(run / "metrics.csv"), "needed")
    monkeypatch.undo()
    assert [r["iteration"] for r in rows(run)] == ["1", "2", "3"]


def test_tensorboard_resume_purges_the_points_after_the_checkpoint(tmp_path):
    pytest.importorskip("tensorboard", reason="needs the tensorboard extra")
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    flags = [f for f in ON if f != "--no-tensorboard"] + ["--tensorboard"]
    assert main(["train", *flags, "--frames", "64", "--checkpoint-interval", "2", "--out-dir", str(tmp_path),
                 "--run-name", "run"]) == 0
    run = tmp_path / "run"
    assert main(["train", "--resume", str(run / "checkpoints" / "iter_000002.pt"), "--frames", "64",
                 "--no-progress"]) == 0
    files = [list(EventFileLoader(str(f)).Load()) for f in (run / "tb").glob("events.out.tfevents.*")]
    files.sort(key=lambda events: events[0].wall_time)
    steps: list[int] = []
    for events in files:  # what TensorBoard shows: a session START at step S drops the earlier points at >= S
        for e in events:
            if e.HasField("session_log") and e.session_log.status == e.session_log.START:
                steps = [s for s in steps if s < e.step]
            steps += [e.step for v in e.summary.value if v.tag == "train/return"]
    assert steps == [16, 32, 48, 64]
