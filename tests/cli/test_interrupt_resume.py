"""Interrupted and damaged runs: SIGINT / SIGTERM save a checkpoint at the next safe point and
`--resume` continues with nothing lost (metrics identical to an uninterrupted run, like the exact
resume of tests/offpolicy/resume_check.py); a truncated checkpoint.pt falls back to the newest
intact checkpoints/iter_*.pt; a run killed (SIGKILL) before its first checkpoint starts again;
`--no-progress > log.txt` gives a readable log."""
from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hetero.cli import main
from marl_backends.trainers.report import RunReport

ROOT = Path(__file__).resolve().parents[2]
ONPOLICY = ["--algo", "mappo", "--env", "spread_v4", "--num-envs", "2", "--rollout-steps", "8", "--hidden", "16,16",
            "--ppo-epochs", "1", "--critic-epochs", "1", "--eval-interval", "2", "--eval-episodes", "2",
            "--no-progress", "--no-tensorboard"]
OFFPOLICY = ["--algo", "omdpg", "--env", "spread_v4", "--num-envs", "4", "--hidden", "16,16", "--batch-size", "32",
             "--warmup-steps", "60", "--train-interval", "5", "--eval-interval", "2", "--eval-episodes", "2",
             "--buffer-size", "200", "--n-step", "3", "--no-progress", "--no-tensorboard"]
PER_IT = {"mappo": 16, "omdpg": 20}


def rows(run: Path) -> list[dict]:
    """metrics.csv without the timing columns (wall_s, fps, rollout_s, ...)."""
    with open(run / "metrics.csv", newline="") as f:
        return [{k: v for k, v in r.items() if not (k.endswith("_s") or k == "fps")} for r in csv.DictReader(f)]


def train(flags, out: Path, name: str, iters: int, algo: str, *extra) -> Path:  # noqa: ANN001
    assert main(["train", *flags, "--frames", str(iters * PER_IT[algo]), "--out-dir", str(out), "--run-name", name,
                 *extra]) == 0
    return out / name


def _signal_at(monkeypatch, it: int, sig: int) -> None:
    """Send ``sig`` to this process when the loop reports iteration ``it`` (mid-run, in-process)."""
    update = RunReport.update

    def patched(self, i, *a, **k):  # noqa: ANN001, ANN002, ANN003
        update(self, i, *a, **k)
        if i == it:
            os.kill(os.getpid(), sig)

    monkeypatch.setattr(RunReport, "update", patched)


@pytest.mark.parametrize("algo", ["mappo", "omdpg"])
def test_sigterm_saves_a_checkpoint_and_resume_loses_nothing(tmp_path, capsys, monkeypatch, algo):
    flags = (ONPOLICY if algo == "mappo" else OFFPOLICY) + ["--checkpoint-interval", "100"]  # no periodic checkpoint
    full = train(flags, tmp_path, "full", 6, algo)
    _signal_at(monkeypatch, 3, signal.SIGTERM)
    rc = main(["train", *flags, "--frames", str(6 * PER_IT[algo]), "--out-dir", str(tmp_path), "--run-name", "cut"])
    monkeypatch.undo()
    err = capsys.readouterr().err
    cut = tmp_path / "cut"
    assert rc == 128 + signal.SIGTERM, err
    assert "interrupted by SIGTERM at iteration 3" in err and f"resume with: hetero train --resume {cut}" in err
    assert "Traceback" not in err and len(rows(cut)) == 3 and (cut / "checkpoint.pt").exists()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers restored
    assert main(["train", "--resume", str(cut), "--no-progress"]) == 0
    assert f"resuming {cut} at iteration 3" in capsys.readouterr().err
    assert rows(cut) == rows(full)


def test_truncated_checkpoint_resumes_from_newest_intact_iter(tmp_path, capsys):
    flags = ONPOLICY + ["--checkpoint-interval", "2"]
    full = train(flags, tmp_path, "full", 6, "mappo")
    run = train(flags, tmp_path, "run", 4, "mappo")  # checkpoint.pt (4), iter_000002.pt, iter_000004.pt
    ck = run / "checkpoint.pt"
    ck.write_bytes(ck.read_bytes()[: ck.stat().st_size // 2])  # a write torn by a full disk / a crash
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--frames", str(6 * PER_IT["mappo"]), "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "note: checkpoint.pt (unreadable" in err and "using checkpoints/iter_000004.pt instead" in err, err
    assert f"resuming {run} at iteration 4" in err
    assert rows(run) == rows(full)
    # the file the error pointed to, given to --resume (used to crash with FileExistsError)
    assert main(["train", "--resume", str(run / "checkpoints" / "iter_000002.pt"), "--frames", str(6 * PER_IT["mappo"]),
                 "--no-progress"]) == 0
    assert f"resuming {run} at iteration 2" in capsys.readouterr().err
    assert rows(run) == rows(full)
    for f in [ck, *(run / "checkpoints").glob("iter_*.pt")]:
        f.write_bytes(b"PK\x03\x04 torn")
    assert main(["train", "--resume", str(run)]) == 2
    err = capsys.readouterr().err
    assert "error: no intact checkpoint in" in err and "Traceback" not in err


def test_offpolicy_fallback_says_the_buffer_refills(tmp_path, capsys):
    run = train(OFFPOLICY + ["--checkpoint-interval", "2"], tmp_path, "run", 4, "omdpg")
    (run / "checkpoint.pt").write_bytes(b"")
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--frames", str(5 * PER_IT["omdpg"])]) == 0
    err = capsys.readouterr().err
    assert "using checkpoints/iter_000004.pt instead" in err and "the replay buffer" in err
    assert len(rows(run)) == 5


def _start(tmp_path: Path, name: str, iters: int, extra=()) -> tuple[subprocess.Popen, Path, object]:  # noqa: ANN001
    log = open(tmp_path / f"{name}.log", "w")  # noqa: SIM115 - `hetero train ... > log.txt`
    cmd = [sys.executable, "-m", "hetero.cli", "train", *ONPOLICY, "--frames", str(iters * PER_IT["mappo"]),
           "--out-dir", str(tmp_path), "--run-name", name, "--log-interval", "1", *extra]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.PIPE, text=True)
    return proc, tmp_path / name, log


def _wait_rows(proc: subprocess.Popen, run: Path, n: int, timeout: float = 240) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout and proc.poll() is None:
        if (run / "metrics.csv").exists() and len((run / "metrics.csv").read_text().splitlines()) > n:
            return
        time.sleep(0.05)
    raise AssertionError(f"run did not reach {n} iterations: {proc.poll()}, {proc.stderr.read() if proc.poll() else ''}")


def test_ctrl_c_or_kill_9_mid_run_then_resume_and_a_readable_log(tmp_path, capsys):
    """Two `hetero train --no-progress > log` processes, started together (one interpreter start-up
    of wall time): a real Ctrl-C (SIGINT) to one and SIGKILL to the other, both before the first
    periodic checkpoint. The first saves and resumes exactly; the second has nothing saved and
    starts again from iteration 0 with a message."""
    procs = {name: _start(tmp_path, name, 400, ["--checkpoint-interval", "1000"]) for name in ("cut", "killed")}
    for name, (proc, run, log) in procs.items():
        _wait_rows(proc, run, 2)
        proc.send_signal(signal.SIGINT) if name == "cut" else proc.kill()
    errs = {name: proc.communicate(timeout=240)[1] for name, (proc, _, _) in procs.items()}
    for _, _, log in procs.values():
        log.close()
    proc, cut, _ = procs["cut"]
    err = errs["cut"]
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted by SIGINT" in err and f"hetero train --resume {cut}" in err
    j = len(rows(cut))
    text = (tmp_path / "cut.log").read_text()
    assert "\r" not in text
    lines = text.splitlines()
    assert lines[0].startswith("iter 1/400  frames 16  return") and all(line.startswith("iter ") for line in lines)
    assert len(lines) >= j - 1 and " fps " in lines[-1] and "groups 1 [0-0-0-0]" in lines[-1]
    assert main(["train", "--resume", str(cut), "--frames", str((j + 2) * PER_IT["mappo"]), "--no-progress"]) == 0
    full = train(ONPOLICY, tmp_path, "full", j + 2, "mappo")
    assert rows(cut) == rows(full)

    killed = procs["killed"][1]
    assert procs["killed"][0].returncode == -signal.SIGKILL
    assert not (killed / "checkpoint.pt").exists() and (killed / "config.json").exists()
    capsys.readouterr()
    assert main(["train", "--resume", str(killed), "--frames", str((j + 2) * PER_IT["mappo"]), "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "has no checkpoint (the run stopped before its first one); starting it again from iteration 0" in err
    assert rows(killed) == rows(full)


def test_hetdps_rounds_get_a_log_line(tmp_path, capsys):
    train(ONPOLICY + ["--sharing", "hetdps:nps", "--hetdps-interval", "2", "--hetdps-samples", "32",
                      "--hetdps-rollouts", "1", "--log-interval", "2"], tmp_path, "h", 4, "mappo")
    out = capsys.readouterr().out.splitlines()
    rounds = [line for line in out if line.startswith("hetdps round at iteration")]
    assert len(rounds) == 2 and all("group(s)" in r for r in rounds)
    assert [line.split()[1] for line in out if line.startswith("iter ")] == ["1/4", "2/4", "4/4"]
