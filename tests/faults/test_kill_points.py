"""SIGKILL at random points of `hetero train` (on- and off-policy) and of `hetero sweep run`, and
inside their checkpoint, metrics, config and state writes: the next `--resume` (or the same
`sweep run` again) finishes with metrics.csv identical to an uninterrupted run's, and no temporary
file is left. The rows of docs/faults.md that cite this module.

Kill points: fractions of the run's wall time drawn from ``numpy.random.default_rng(SEED)``, one
uniform draw in each of N equal slices (set ``HETERO_FAULT_SEED`` to draw others; the seed and
every kill time are printed with ``-s``, and a failing assertion names them), times the wall time
of an uninterrupted run measured here. A run is one `hetero ...` command forked from a process
that imported hetero once (:class:`Forker`), so the interpreter's ~2 s of imports do not dilute
the kill points: what is timed is the command itself. Writes are hit deterministically by a
command that kills itself from inside them (``kill_inside`` in ``SERVER``).
"""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from hetero.cli import main
from marl_backends.envs.registry import REGISTRY

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "trainers"))
from fake_env import FakeEnv  # noqa: E402

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SEED = int(os.environ.get("HETERO_FAULT_SEED", "20250"))
N_TRAIN = {"mappo": 9, "omdpg": 5}
N_SWEEP = 6
_rng = np.random.default_rng(SEED)


def _fractions(n: int) -> list[float]:
    """n kill points as fractions of the wall time: one uniform draw in each n-th of it (each
    point is uniform over its slice, and together they cover the run from start to end)."""
    return [float((i + u) / n) for i, u in enumerate(_rng.uniform(size=n))]


TRAIN_POINTS = [(algo, u) for algo, n in N_TRAIN.items() for u in _fractions(n)]
SWEEP_POINTS = _fractions(N_SWEEP)

ITERS = 20
TRAIN = {
    "mappo": ["--algo", "mappo", "--env", "fake", "--num-envs", "2", "--rollout-steps", "8", "--hidden", "8,8",
              "--ppo-epochs", "1", "--critic-epochs", "1", "--frames", str(ITERS * 16)],
    "omdpg": ["--algo", "omdpg", "--env", "fake", "--num-envs", "2", "--hidden", "8,8", "--batch-size", "16",
              "--warmup-steps", "20", "--train-interval", "5", "--buffer-size", "100", "--n-step", "2",
              "--frames", str(ITERS * 10)],
}
COMMON = ["--eval-interval", "4", "--eval-episodes", "2", "--checkpoint-interval", "3", "--no-progress",
          "--no-tensorboard", "--log-interval", "1"]

SWEEP = """
[sweep]
name = "kill"
retries = 2
[options]
algo = "mappo"
frames = 96
num_envs = 2
rollout_steps = 8
hidden = [8, 8]
ppo_epochs = 1
critic_epochs = 1
eval_interval = 2
eval_episodes = 2
checkpoint_interval = 2
threads = 1
progress = false
tensorboard = false
[grid]
env = ["pms_15a_3c"]
method = ["fps"]
seed = [0, 1]
[methods.fps]
sharing = "fps"
"""
SWEEP_RUNS = ("pms_15a_3c_fps_s0", "pms_15a_3c_fps_s1")

SERVER = r"""
import io, json, os, signal, sys, traceback
from pathlib import Path

sys.path.insert(0, sys.argv[1])
from fake_env import FakeEnv
from marl_backends.envs.registry import REGISTRY

REGISTRY["fake"] = (lambda num_envs, device, seed, continuous, **kw: FakeEnv(num_envs, seed, 4, continuous, 8),
                    "trainer-test env")
from hetero.cli import main
import marl_backends.offpolicy.cli, marl_backends.sweep.engines, marl_backends.trainers.cli  # noqa: F401


def die():
    os.kill(os.getpid(), signal.SIGKILL)


def kill_inside(what, nth):
    # SIGKILL this process inside its nth write of one kind
    import torch
    from marl_backends.trainers import run_io

    count = [0]

    def hit():
        count[0] += 1
        return count[0] == nth

    if what == "torch.save":  # a checkpoint half written under its temporary name
        real_save = torch.save

        def save(obj, f, *a, **k):
            if hit():
                buf = io.BytesIO()
                real_save(obj, buf, *a, **k)
                f.write(buf.getvalue()[: buf.tell() // 2])
                f.flush()
                die()
            return real_save(obj, f, *a, **k)

        torch.save = save
    elif what.startswith("replace:"):  # a file complete under its temporary name, before os.replace
        name, real_replace = what.split(":", 1)[1], os.replace

        def replace(src, dst, *a, **k):
            if Path(dst).name == name and hit():
                die()
            return real_replace(src, dst, *a, **k)

        os.replace = replace
    elif what == "append":  # a metrics row appended, before anything after it
        real_append = run_io.MetricsLog._append

        def append(self, row):
            real_append(self, row)
            if hit():
                die()

        run_io.MetricsLog._append = append
    else:
        raise ValueError(what)


print("ready", flush=True)
while True:
    line = sys.stdin.readline()
    if not line:
        break
    job = json.loads(line)
    pid = os.fork()
    if pid == 0:
        fd = os.open(job["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        rc = 1
        try:
            if job["kill_inside"]:
                kill_inside(*job["kill_inside"])
            sys.argv = ["hetero", *job["argv"]]
            rc = main(job["argv"])
        except SystemExit as e:
            rc = e.code if isinstance(e.code, int) else int(e.code is not None)
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(rc)
    print(pid, flush=True)
    sys.stdin.readline()  # "reap": the command was killed, or is waited for
    print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), flush=True)
"""


class Forker:
    """A process that has imported hetero (and registered ``--env fake``) once and forks each
    ``hetero ARGV`` from there: the command starts at once, and is then killed by PID."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", SERVER, str(ROOT / "tests" / "trainers")], cwd=ROOT,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "ready"

    def run(self, argv: list[str], log: Path, kill_at: float | None = None, kill_inside: tuple | None = None,
            limit: float = 180.0) -> tuple[int, float]:
        """(exit code, seconds) of ``hetero ARGV``; SIGKILL ``kill_at`` seconds after its start
        (nothing if it has ended by then: it is not reaped until asked), or from ``kill_inside``."""
        self.proc.stdin.write(json.dumps({"argv": argv, "log": str(log), "kill_inside": kill_inside}) + "\n")
        self.proc.stdin.flush()
        pid = int(self.proc.stdout.readline())
        t0 = time.monotonic()
        watchdog = threading.Timer(limit, os.kill, (pid, signal.SIGKILL))  # a hung command fails, not the session
        watchdog.start()
        if kill_at is not None:
            time.sleep(max(0.0, t0 + kill_at - time.monotonic()))
            os.kill(pid, signal.SIGKILL)
        self.proc.stdin.write("reap\n")
        self.proc.stdin.flush()
        rc = int(self.proc.stdout.readline())
        seconds = time.monotonic() - t0
        watchdog.cancel()
        return rc, seconds

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def forker():
    f = Forker()
    yield f
    f.close()


@pytest.fixture(scope="module", autouse=True)
def fake_env():
    """``--env fake`` in this process too (the resumes run here)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(REGISTRY, "fake", (lambda num_envs, device, seed, continuous, **kw:
                                      FakeEnv(num_envs, seed, 4, continuous, 8), "trainer-test env"))
        yield


def rows(run: Path) -> list[dict]:
    """metrics.csv without the wall-clock columns (wall_s, fps, rollout_s, ...)."""
    with open(run / "metrics.csv", newline="") as f:
        return [{k: v for k, v in r.items() if not (k.endswith("_s") or k == "fps")} for r in csv.DictReader(f)]


def temp_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob(".*.tmp*"))


def train_argv(algo: str, out: Path) -> list[str]:
    return ["train", *TRAIN[algo], *COMMON, "--out-dir", str(out), "--run-name", "run"]


@pytest.fixture(scope="module")
def uninterrupted(forker, tmp_path_factory):
    """{algo or "sweep": (wall seconds, {run name: rows})} of runs that were not killed."""
    print(f"kill points: HETERO_FAULT_SEED={SEED}")
    tmp = tmp_path_factory.mktemp("uninterrupted")
    out = {}
    for algo in TRAIN:
        rc, seconds = forker.run(train_argv(algo, tmp / algo), tmp / f"{algo}.log")
        assert rc == 0, (tmp / f"{algo}.log").read_text()
        out[algo] = (seconds, {"run": rows(tmp / algo / "run")})
        print(f"uninterrupted {algo}: {seconds:.2f} s")
    spec = tmp / "sweep.toml"
    spec.write_text(SWEEP)
    rc, seconds = forker.run(["sweep", "run", str(spec), "--out", str(tmp / "sweep"), "--jobs", "2"], tmp / "sweep.log")
    assert rc == 0, (tmp / "sweep.log").read_text()
    out["sweep"] = (seconds, {name: rows(tmp / "sweep" / "runs" / name) for name in SWEEP_RUNS})
    print(f"uninterrupted sweep: {seconds:.2f} s")
    return out


def at_kill(run: Path) -> str:
    """What the killed command left: the last metrics row and checkpoint, temporary files."""
    if not run.exists():
        return "no run folder yet"
    n = len(rows(run)) if (run / "metrics.csv").exists() else None
    ckpt = "checkpoint.pt" if (run / "checkpoint.pt").exists() else "no checkpoint"
    tmp = [p.name for p in temp_files(run)]
    return f"{'no metrics.csv' if n is None else f'{n} metrics rows'}, {ckpt}{', ' + ', '.join(tmp) if tmp else ''}"


def resume_train(algo: str, out: Path, what: str, capsys) -> Path:  # noqa: ANN001
    """Continue a killed `hetero train`: `--resume` its folder, or (killed before the folder was
    made) the same command again."""
    run = out / "run"
    capsys.readouterr()
    argv = ["train", "--resume", str(run), "--no-progress"] if run.exists() else train_argv(algo, out)
    rc = main(argv)
    err = capsys.readouterr().err
    if rc and run.exists() and not (run / "config.json").exists():  # killed before its config.json:
        assert rc == 2 and "holds no run yet" in err and "run that command again" in err, f"{what}: {err}"
        argv = train_argv(algo, out)  # the same command takes the folder again
        rc = main(argv)
        err += capsys.readouterr().err
    assert rc == 0, f"{what}: `hetero {' '.join(argv)}` exited {rc}:\n{err}"
    return run


def check_train(algo: str, out: Path, rc: int, what: str, uninterrupted, capsys) -> None:  # noqa: ANN001
    assert rc in (-signal.SIGKILL, 0), f"{what}: exit code {rc}:\n{(out / 'log.txt').read_text()}"
    run = resume_train(algo, out, what, capsys)
    assert rows(run) == uninterrupted[algo][1]["run"], what
    assert temp_files(out) == [], what
    assert (run / "summary.json").exists(), what


@pytest.mark.parametrize("algo, u", TRAIN_POINTS, ids=[f"{a}-{i}-at{u:.3f}" for i, (a, u) in enumerate(TRAIN_POINTS)])
def test_sigkill_train_at_a_random_point_then_resume_loses_nothing(forker, uninterrupted, tmp_path, capsys, algo, u):
    at = u * uninterrupted[algo][0]
    rc, _ = forker.run(train_argv(algo, tmp_path), tmp_path / "log.txt", kill_at=at)
    what = (f"{algo} killed at {at:.3f} s ({u:.3f} of the run; HETERO_FAULT_SEED={SEED}); exit {rc}; "
            f"{at_kill(tmp_path / 'run')}")
    with capsys.disabled():  # shown with -s; a failing assertion names it too
        print(what)
    check_train(algo, tmp_path, rc, what, uninterrupted, capsys)


WRITES = {  # id: (algo, (what, nth)); checkpoints every 3 iterations, eval columns appear at iteration 4
    "first-checkpoint.pt-half-written": ("mappo", ("torch.save", 1)),
    "iter-file-half-written": ("mappo", ("torch.save", 2)),
    "checkpoint.pt-complete-before-replace": ("mappo", ("replace:checkpoint.pt", 2)),
    "offpolicy-checkpoint.pt-with-buffer-half-written": ("omdpg", ("torch.save", 4)),
    "metrics.csv-rewrite-before-replace": ("mappo", ("replace:metrics.csv", 2)),
    "metrics-row-appended-after-a-checkpoint": ("mappo", ("append", 5)),
    "offpolicy-metrics-row-appended": ("omdpg", ("append", 7)),
    "config.json-before-replace": ("mappo", ("replace:config.json", 1)),
    "summary.json-before-replace": ("mappo", ("replace:summary.json", 1)),
}


@pytest.mark.parametrize("point", list(WRITES))
def test_sigkill_train_inside_a_write_then_resume_loses_nothing(forker, uninterrupted, tmp_path, capsys, point):
    algo, inside = WRITES[point]
    rc, _ = forker.run(train_argv(algo, tmp_path), tmp_path / "log.txt", kill_inside=inside)
    assert rc == -signal.SIGKILL, (tmp_path / "log.txt").read_text()
    assert temp_files(tmp_path) or inside[0] == "append"  # the kill left the write's temporary file
    check_train(algo, tmp_path, rc, f"{algo} killed inside {point}", uninterrupted, capsys)


def wait_children_gone(out: Path, timeout: float = 20.0) -> None:
    """The killed sweep's run processes (SIGKILLed by the kernel when their parent dies) have exited."""
    pids = [json.loads(p.read_text()).get("pid") for p in (out / "state").glob("*.json")] if (out / "state").is_dir() \
        else []
    deadline = time.monotonic() + timeout
    for pid in filter(None, pids):
        while time.monotonic() < deadline:
            try:
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                break
            if state == "Z":
                break
            time.sleep(0.02)


def check_sweep(out: Path, spec: Path, rc: int, what: str, uninterrupted, capsys) -> None:  # noqa: ANN001
    assert rc in (-signal.SIGKILL, 0), f"{what}: exit code {rc}"
    wait_children_gone(out)
    capsys.readouterr()
    rc = main(["sweep", "run", str(spec), "--out", str(out), "--jobs", "2"])
    err = capsys.readouterr().err
    assert rc == 0, f"{what}: sweep run again exited {rc}:\n{err}"
    for name in SWEEP_RUNS:
        assert rows(out / "runs" / name) == uninterrupted["sweep"][1][name], f"{what}: {name}"
        assert json.loads((out / "state" / f"{name}.json").read_text())["status"] == "done", what
    assert sorted(p.name for p in (out / "runs").iterdir()) == list(SWEEP_RUNS), what  # no stray X_2 folders
    assert temp_files(out) == [], what


@pytest.mark.parametrize("u", SWEEP_POINTS, ids=[f"{i}-at{u:.3f}" for i, u in enumerate(SWEEP_POINTS)])
def test_sigkill_sweep_at_a_random_point_then_rerun_loses_nothing(forker, uninterrupted, tmp_path, capsys, u):
    spec, out = tmp_path / "sweep.toml", tmp_path / "sweep"
    spec.write_text(SWEEP)
    at = u * uninterrupted["sweep"][0]
    rc, _ = forker.run(["sweep", "run", str(spec), "--out", str(out), "--jobs", "2"], tmp_path / "log.txt", kill_at=at)
    left = "; ".join(f"{name}: {at_kill(out / 'runs' / name)}" for name in SWEEP_RUNS)
    what = f"sweep killed at {at:.3f} s ({u:.3f} of the run; HETERO_FAULT_SEED={SEED}); exit {rc}; {left}"
    with capsys.disabled():  # shown with -s; a failing assertion names it too
        print(what)
    check_sweep(out, spec, rc, what, uninterrupted, capsys)


@pytest.mark.parametrize("inside", [pytest.param(("replace:pms_15a_3c_fps_s0.json", 2), id="state-file-before-replace"),
                                    pytest.param(("replace:sweep.json", 1), id="sweep.json-before-replace")])
def test_sigkill_sweep_inside_a_write_then_rerun_loses_nothing(forker, uninterrupted, tmp_path, capsys, inside):
    spec, out = tmp_path / "sweep.toml", tmp_path / "sweep"
    spec.write_text(SWEEP)
    rc, _ = forker.run(["sweep", "run", str(spec), "--out", str(out), "--jobs", "2"], tmp_path / "log.txt",
                       kill_inside=inside)
    assert rc == -signal.SIGKILL, (tmp_path / "log.txt").read_text()
    check_sweep(out, spec, rc, f"sweep killed inside {inside}", uninterrupted, capsys)
