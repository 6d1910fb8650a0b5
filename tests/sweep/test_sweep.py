"""`hetero sweep`: local and Ray engines give the runs of `hetero train` alone; a killed run is
retried and resumes exactly; a finished sweep reruns as a no-op; a two-node Ray cluster shares one
sweep. Tiny budgets: each run is a child process that mostly spends its time importing torch."""
from __future__ import annotations

import csv
import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from hetero.cli import main as hetero_main
from marl_backends.sweep import EngineConfig, load_spec, run_sweep, sweep_status, write_report
from marl_backends.sweep.execute import read_state, state_path
from marl_backends.sweep.spec import command_argv

TINY = """
[sweep]
name = "tiny"
retries = 2
[options]
algo = "mappo"
frames = {frames}
num_envs = 2
rollout_steps = 8
hidden = [16, 16]
ppo_epochs = 1
critic_epochs = 1
eval_interval = 1
eval_episodes = 2
checkpoint_interval = 1
threads = 1
progress = false
tensorboard = false
[grid]
env = ["pms_15a_3c"]
method = {methods}
seed = {seeds}
[methods.fps]
sharing = "fps"
[methods.groups]
sharing = "groups:env"
[[override]]
when = {{ method = "groups", seed = 1 }}
lr = 0.001
[report]
threshold = -1000.0
"""


def write_spec(tmp: Path, name: str, frames: int = 32, methods=("fps", "groups"), seeds=(0, 1)) -> Path:  # noqa: ANN001
    p = tmp / f"{name}.toml"
    p.write_text(TINY.format(frames=frames, methods=json.dumps(list(methods)), seeds=json.dumps(list(seeds))))
    return p


def metric_rows(run: Path) -> list[dict]:
    with open(run / "metrics.csv", newline="") as f:
        return [{k: v for k, v in r.items() if not is_timing(k)} for r in csv.DictReader(f)]


def is_timing(column: str) -> bool:
    """Wall-clock columns (wall_s, rollout_s, fps, ...) differ between any two runs."""
    return column == "fps" or column.endswith("_s")


def config(run: Path) -> dict:
    return {k: v for k, v in json.loads((run / "config.json").read_text()).items() if k not in ("command", "out_dir")}


def train_alone(spec, out: Path) -> None:  # noqa: ANN001
    """Each run trained by itself with `hetero train` (in this process), into out/runs/NAME."""
    for r in spec.runs:
        hetero_main(["train", *command_argv("train", r.opts), "--out-dir", str(out / "runs"), "--run-name", r.name])


def assert_same_runs(spec, a: Path, b: Path) -> None:  # noqa: ANN001
    for r in spec.runs:
        assert metric_rows(a / "runs" / r.name) == metric_rows(b / "runs" / r.name), r.name
        assert config(a / "runs" / r.name) == config(b / "runs" / r.name), r.name


def report_files(spec, out: Path) -> dict[str, str]:  # noqa: ANN001
    from dataclasses import replace

    write_report(replace(spec, out=out), figures=False)
    return {n: (out / "report" / n).read_text() for n in ("report.md", "summary.csv", "runs.csv")}


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory):  # noqa: ANN001, ANN201
    """The 4-run sweep on the local engine (2 jobs), and the same runs trained alone."""
    tmp = tmp_path_factory.mktemp("sweep")
    spec = load_spec(write_spec(tmp, "tiny"), out=tmp / "local")
    outcome = run_sweep(spec, EngineConfig(jobs=2))
    assert outcome == {r.name: "done" for r in spec.runs}
    train_alone(spec, tmp / "alone")
    return spec, tmp


def test_spec_expands_grid_methods_and_overrides(tmp_path):
    spec = load_spec(write_spec(tmp_path, "tiny"))
    assert [r.name for r in spec.runs] == ["pms_15a_3c_fps_s0", "pms_15a_3c_fps_s1", "pms_15a_3c_groups_s0",
                                           "pms_15a_3c_groups_s1"]
    opts = {r.name: r.opts for r in spec.runs}
    assert opts["pms_15a_3c_groups_s1"]["lr"] == 0.001 and "lr" not in opts["pms_15a_3c_groups_s0"]
    assert opts["pms_15a_3c_fps_s0"]["sharing"] == "fps" and opts["pms_15a_3c_fps_s0"]["seed"] == 0
    assert spec.out == Path("runs/sweeps/tiny")
    bad = tmp_path / "bad.toml"
    bad.write_text('[grid]\nmethod = ["nope"]\n')
    with pytest.raises(ValueError, match=r"\[methods.nope\]"):
        load_spec(bad)


@pytest.mark.parametrize("path", sorted((Path(__file__).parents[2] / "case_studies" / "sweeps").glob("*.toml")),
                         ids=lambda p: p.stem)
def test_shipped_sweep_files_pass_every_flag_check(path):
    """Each run of each case-study sweep would start: parsed by the real parser and past train's flag
    checks (a HetDPS option on a static layout once failed every FPS/NPS run of hetdps_pms_small)."""
    from marl_backends.sweep.spec import check_argv

    check_argv(load_spec(path))


def test_check_argv_refuses_a_hetdps_flag_on_a_static_layout(tmp_path):
    from marl_backends.sweep.spec import check_argv

    f = tmp_path / "s.toml"
    f.write_text('[options]\nalgo = "mappo"\nhetdps_interval = 5\n[grid]\nsharing = ["fps", "hetdps:nps"]\n')
    with pytest.raises(ValueError, match="configures HetDPS"):
        check_argv(load_spec(f))


def test_local_sweep_equals_runs_alone_and_rerun_is_a_noop(local_sweep):
    spec, tmp = local_sweep
    assert_same_runs(spec, tmp / "local", tmp / "alone")
    assert report_files(spec, tmp / "local") == report_files(spec, tmp / "alone")
    st = sweep_status(load_spec(spec.source, out=tmp / "local"))
    assert st["counts"]["done"] == 4 and st["frames_remaining"] == 0
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in (tmp / "local").rglob("*") if p.is_file()}
    assert run_sweep(spec, EngineConfig(jobs=2)) == {r.name: "skipped" for r in spec.runs}
    after = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in (tmp / "local").rglob("*") if p.is_file()}
    assert after == before


def test_killed_run_is_retried_and_resumes_exactly(tmp_path):
    spec = load_spec(write_spec(tmp_path, "kill", frames=16 * 24, methods=("groups",), seeds=(0,)), out=tmp_path / "s")
    run = spec.runs_dir / spec.runs[0].name
    th = threading.Thread(target=lambda: run_sweep(spec, EngineConfig(jobs=1)))
    th.start()
    killed, deadline = None, time.time() + 300
    while killed is None and time.time() < deadline and th.is_alive():
        st = read_state(spec.out, spec.runs[0].name)
        if st.get("pid") and (run / "checkpoint.pt").exists() and len(metric_rows(run)) >= 3:
            os.kill(st["pid"], signal.SIGKILL)  # the run's process: a worker death mid-run
            killed = len(metric_rows(run))
        time.sleep(0.02)
    th.join()
    assert killed is not None and killed < 24, "the run finished before it could be killed"
    st = json.loads(state_path(spec.out, spec.runs[0].name).read_text())
    assert st["status"] == "done" and st["attempts"] == 2
    assert "--resume" in st["argv"]
    train_alone(spec, tmp_path / "alone")
    assert metric_rows(run) == metric_rows(tmp_path / "alone" / "runs" / spec.runs[0].name)
    assert len(metric_rows(run)) == 24


def test_failed_run_is_reported_with_its_error(tmp_path):
    p = write_spec(tmp_path, "fail", methods=("fps",), seeds=(0,))
    p.write_text(p.read_text().replace('env = ["pms_15a_3c"]', 'env = ["no_such_env"]'))
    spec = load_spec(p, out=tmp_path / "s")
    assert run_sweep(spec, EngineConfig()) == {spec.runs[0].name: "failed"}
    row = sweep_status(spec)["runs"][0]
    assert row["status"] == "failed" and "no_such_env" in row["error"]
    assert read_state(spec.out, spec.runs[0].name)["attempts"] == 1  # an error is not retried


try:
    import ray
except ImportError:
    ray = None
needs_ray = pytest.mark.skipif(ray is None, reason="the optional extra `ray` is not installed (pip install -e '.[ray]')")


@needs_ray
def test_ray_sweep_equals_local_sweep(local_sweep):
    spec, tmp = local_sweep
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        outcome = run_sweep(load_spec(spec.source, out=tmp / "ray"), EngineConfig(engine="ray"))
    finally:
        ray.shutdown()
    assert outcome == {r.name: "done" for r in spec.runs}
    assert_same_runs(spec, tmp / "ray", tmp / "alone")
    assert report_files(spec, tmp / "ray") == report_files(spec, tmp / "alone")


@needs_ray
def test_two_node_ray_cluster_runs_one_sweep(tmp_path):
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False)
    try:
        spec = load_spec(write_spec(tmp_path, "two", methods=("fps",), seeds=(0, 1)), out=tmp_path / "s")
        outcome = run_sweep(spec, EngineConfig(engine="ray", cpus_per_run=1))
        nodes = {read_state(spec.out, r.name)["node"] for r in spec.runs}
    finally:
        ray.shutdown()
        cluster.shutdown()
    assert outcome == {r.name: "done" for r in spec.runs}
    assert len(nodes) == 2, nodes  # one CPU per node, one CPU per run: both nodes took a run


def test_gpu_runs_get_cuda_and_a_resumed_run_moves_device(tmp_path):
    """--gpus-per-run > 0 puts every run on cuda (Ray sets CUDA_VISIBLE_DEVICES per task); a run
    checkpointed on one device resumes on another with only --device changed (no GPU needed)."""
    from marl_backends.sweep.engines import tasks_of
    from marl_backends.sweep.execute import child_argv

    spec = load_spec(write_spec(tmp_path, "gpu", methods=("fps",), seeds=(0,)), out=tmp_path / "s")
    task = tasks_of(spec, device="cuda")[0]
    argv = child_argv(task)
    assert argv[argv.index("--device") + 1] == "cuda" and "--resume" not in argv
    task.run_dir.mkdir(parents=True)
    (task.run_dir / "checkpoint.pt").write_bytes(b"")
    (task.run_dir / "config.json").write_text(json.dumps({"frames": 32, "device": "cpu"}))
    assert child_argv(task) == ["train", "--resume", str(task.run_dir), "--device", "cuda"]
    assert child_argv(tasks_of(spec)[0]) == ["train", "--resume", str(task.run_dir)]


def test_report_tables_thresholds_and_timelines(tmp_path):
    """Report arithmetic on hand-written run folders: mean +/- sd over seeds, best, frames to the
    threshold (a seed that never reaches it is counted, not averaged), HetDPS timelines."""
    p = write_spec(tmp_path, "rep", methods=("groups",), seeds=(0, 1))
    p.write_text(p.read_text().replace("threshold = -1000.0", "threshold = -55.0"))
    spec = load_spec(p, out=tmp_path / "s")
    evals = {0: [-90.0, -60.0, -70.0], 1: [-95.0, -80.0, -50.0]}
    for r, seed in zip(spec.runs, (0, 1)):
        d = spec.runs_dir / r.name
        d.mkdir(parents=True)
        lines = ["iteration,frames,train_return,eval_return,wall_s,layout"]
        lines += [f"{i + 1},{16 * (i + 1)},{v},{v},{i + 1.0},0-0-1" for i, v in enumerate(evals[seed])]
        (d / "metrics.csv").write_text("\n".join(lines) + "\n")
        (d / "hetdps_rounds.jsonl").write_text(json.dumps({"update": 2, "labels": [0, 0, 1]}) + "\n")
    hetero_main(["sweep", "report", spec.source, "--out", str(spec.out)])
    row = next(csv.DictReader(open(spec.out / "report" / "summary.csv")))
    assert row["final"] == "-60.0 ± 14.1" and row["best"] == "-55.0 ± 7.1"
    assert row["frames_to_threshold"] == "48 (1/2 reached)"
    assert (spec.out / "report" / "rewards.png").exists()
    assert all((spec.out / "report" / "timelines" / f"{r.name}.png").exists() for r in spec.runs)
