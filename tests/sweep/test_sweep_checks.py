"""`hetero sweep run`: the whole file and every run checked before any run starts (`--dry-run` too:
unknown keys with a did-you-mean, envs, layouts, algos, `when` clauses, run names), one `error:` line
and exit 2; clean-up removes only a folder inside OUT/runs that the sweep made; one `sweep run` per
sweep folder, a stale lock does not block."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from hetero.cli import main
from marl_backends.sweep import load_spec
from marl_backends.sweep.engines import tasks_of
from marl_backends.sweep.execute import RunFailed, execute_run, read_state, write_state

BASE = """
[sweep]
retries = 1
[options]
algo = "mappo"
frames = 16
num_envs = 2
rollout_steps = 8
[grid]
env = ["pms_15a_3c"]
method = ["fps"]
seed = [0]
[methods.fps]
sharing = "fps"
[report]
threshold = -10.0
"""
OVERRIDE = '\n[[override]]\nwhen = {{ {} }}\nlr = 0.001\n'

CASES = [  # (edit of BASE, text of the error line)
    (("retries = 1", "retires = 1"), "[sweep] has an unknown key 'retires' (did you mean 'retries'?)"),
    (("threshold = -10.0", "treshold = -10.0"), "[report] has an unknown key 'treshold' (did you mean 'threshold'?)"),
    (("num_envs = 2", "num_env = 2"), "[options] has an unknown key 'num_env' (did you mean 'num_envs'?)"),
    (('[methods.fps]\nsharing = "fps"', '[methods.fps]\nsharing = "fps"\nhetdps_intervall = 5'),
     "[methods.fps] has an unknown key 'hetdps_intervall' (did you mean 'hetdps_interval'?)"),
    (('"pms_15a_3c"', '"pms_15a_3x"'), "unknown env 'pms_15a_3x'. Did you mean 'pms_15a_3c'"),
    (('sharing = "fps"', 'sharing = "fsp"'), "unknown --sharing 'fsp'"),
    (('sharing = "fps"', 'sharing = "groups:0,1"'), "2 group labels but the env has 15 agents"),
    (('algo = "mappo"', 'algo = "mapo"'), "unknown --algo 'mapo'"),
    (("seed = [0]", "seed = [0]" + OVERRIDE.format('sharing_mode = "x"')),
     "[[override]] #1 when names 'sharing_mode', which is neither a [grid] axis"),
    (("seed = [0]", "seed = [0]" + OVERRIDE.format('method = "fsp"')),
     "[[override]] #1 when method = 'fsp', but there is no [methods.fsp] table (did you mean 'fps'?)"),
    (("seed = [0]", "seed = [0]" + OVERRIDE.format('env = ["pms_15a_5c", "pms_15_5c"]')),
     "[[override]] #1 when env: unknown env 'pms_15_5c'"),
    (('env = ["pms_15a_3c"]\nmethod = ["fps"]\nseed = [0]\n[methods.fps]', 'method = [".."]\n[methods.".."]'),
     "gives the run name '..'"),
    (('env = ["pms_15a_3c"]\nmethod = ["fps"]\nseed = [0]', 'env = ["."]'), "gives the run name '.'"),
    (("num_envs = 2", "num_envs = 100000000"), "--num-envs 100,000,000 needs about"),
]


def write(tmp: Path, text: str) -> Path:
    p = tmp / "s.toml"
    p.write_text(text)
    return p


@pytest.mark.parametrize("edit, text", CASES, ids=[c[1][:40] for c in CASES])
def test_dry_run_refuses_a_bad_file_before_any_run(capsys, tmp_path, edit, text):
    spec = BASE.replace(*edit)
    assert spec != BASE
    out = tmp_path / "out"
    assert main(["sweep", "run", str(write(tmp_path, spec)), "--dry-run", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if x.startswith("error:")]
    assert len(lines) == 1 and text in lines[0], err
    assert not out.exists()


def test_dots_inside_run_names_stay_valid_and_bad_usage_exits_2(capsys, tmp_path):
    spec = BASE.replace("seed = [0]", "seed = [0]\nlr = [0.0003]")
    assert main(["sweep", "run", str(write(tmp_path, spec)), "--dry-run", "--out", str(tmp_path / "o")]) == 0
    assert capsys.readouterr().out.startswith("pms_15a_3c_fps_lr0.0003_s0: hetero train")
    assert main(["sweep", "run", str(tmp_path / "missing.toml")]) == 2
    assert main(["sweep", "run", str(write(tmp_path, BASE)), "--jobs", "0"]) == 2
    assert main(["sweep", "run", str(write(tmp_path, BASE)), "--retries", "-1"]) == 2
    assert "error: --retries must be >= 0" in capsys.readouterr().err


def test_clean_up_removes_only_folders_the_sweep_made(tmp_path):
    spec = load_spec(write(tmp_path, BASE), out=tmp_path / "s")
    task = tasks_of(spec)[0]
    run = task.run_dir
    run.mkdir(parents=True)
    (run / "mine.txt").write_text("not the sweep's")  # a folder in a run's place, no checkpoint
    with pytest.raises(RunFailed, match="no attempt of this sweep created it"):
        execute_run(task)
    assert (run / "mine.txt").read_text() == "not the sweep's"
    assert read_state(spec.out, task.name)["status"] == "failed"
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep")
    (run / "mine.txt").unlink()
    run.rmdir()
    run.symlink_to(outside)  # a link out of OUT/runs
    write_state(spec.out, task.name, made_run_dir=True)
    with pytest.raises(RunFailed, match="is not a folder inside"):
        execute_run(task)
    assert (outside / "keep.txt").exists()


def test_a_folder_the_sweep_made_is_cleaned_before_a_fresh_attempt(tmp_path):
    from marl_backends.sweep.execute import _remove_unfinished, made_by_sweep

    spec = load_spec(write(tmp_path, BASE), out=tmp_path / "s")
    task = tasks_of(spec)[0]
    task.run_dir.mkdir(parents=True)
    (task.run_dir / "config.json").write_text(json.dumps({"command": "hetero train --frames 16"}))
    assert not made_by_sweep(task)
    write_state(spec.out, task.name, argv=["train", "--frames", "16"])  # a state of an earlier version
    assert made_by_sweep(task)
    _remove_unfinished(task)
    assert not task.run_dir.exists() and (tmp_path / "s" / "runs").is_dir()


HOLD = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
os.write(fd, f"{os.getpid()}\\n".encode())
print("held", flush=True)
time.sleep(120)
"""


def test_a_second_sweep_run_is_refused_and_a_stale_lock_does_not_block(capsys, tmp_path):
    from marl_backends.sweep.lock import SweepLock

    out = tmp_path / "s"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(out / "sweep.lock")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert main(["sweep", "run", str(write(tmp_path, BASE)), "--out", str(out)]) == 2
        err = capsys.readouterr().err
        lines = [x for x in err.splitlines() if x.startswith("error:")]
        assert len(lines) == 1 and f"in use by another `hetero sweep run` (PID {holder.pid}" in lines[0], err
        assert not (out / "runs").exists() and not (out / "sweep.json").exists()
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    assert (out / "sweep.lock").read_text().strip() == str(holder.pid)  # left behind by the killed holder
    with SweepLock(out):
        assert (out / "sweep.lock").read_text().strip() == str(os.getpid())
