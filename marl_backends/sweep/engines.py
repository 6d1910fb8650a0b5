"""Engines that execute a sweep's runs: a local pool (default) or Ray tasks (optional extra ``ray``).

Both give a run the same semantics: skip it when done; otherwise run it as a child process
(:func:`execute_run`), and when that child is killed (:class:`RunDied`), retry up to ``retries``
times, resuming from the checkpoint. The local engine supervises ``jobs`` children at a time from
threads of the driver (the children are the worker processes; a thread only waits on one).
The Ray engine submits one Ray task per run with ``num_cpus`` / ``num_gpus`` (fractional GPUs
pack runs on one device), ``max_retries`` and ``retry_exceptions=[RunDied]``: Ray does the
scheduling, placement across nodes and the retries, including of tasks whose worker or node dies.
The driver holds the sweep folder's lock (:mod:`marl_backends.sweep.lock`) while runs execute.
"""
from __future__ import annotations

import os
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from marl_backends.sweep.execute import RunDied, RunFailed, RunTask, execute_run, is_done, write_state
from marl_backends.sweep.lock import SweepLock
from marl_backends.sweep.spec import SweepSpec
from marl_backends.trainers.run_io import write_json

Report = Callable[[str, str, str], None]  # (run name, outcome, message)


@dataclass(frozen=True)
class EngineConfig:
    """How a sweep is executed (``hetero sweep run`` flags map onto these 1:1)."""

    engine: str = "local"        # local | ray
    jobs: int = 1                # local: runs at a time
    address: str = ""            # ray: "" = start a local instance, auto | HOST:PORT = join a cluster
    cpus_per_run: float = 1.0    # ray: num_cpus of each run's task
    gpus_per_run: float = 0.0    # ray: num_gpus of each run's task (0.25 packs four runs on a GPU)
    retries: int | None = None   # attempts after a worker death (None: the sweep file's, default 3)


def package_root() -> str:
    """The folder that holds the imported ``hetero`` and ``marl_backends`` (the child imports them from there)."""
    import marl_backends

    return str(Path(marl_backends.__file__).resolve().parent.parent)


def tasks_of(spec: SweepSpec, device: str = "") -> list[RunTask]:
    root = package_root()
    out = str(spec.out.resolve())  # workers on other nodes (other working directories) see the same path
    return [RunTask(r.name, spec.command, r.options, out, root, device) for r in spec.runs]


def _with_retries(task: RunTask, retries: int) -> dict:
    for attempt in range(retries + 1):
        try:
            return execute_run(task, node="local")
        except RunDied:
            if attempt == retries:
                raise
    raise AssertionError("unreachable")


def run_local(tasks: list[RunTask], cfg: EngineConfig, retries: int, report: Report) -> dict[str, str]:
    outcome: dict[str, str] = {}
    with ThreadPoolExecutor(max(1, cfg.jobs)) as ex:
        futs = {ex.submit(_with_retries, t, retries): t for t in tasks}
        pending = set(futs)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for f in done:
                outcome[futs[f].name] = _settle(futs[f], f.exception(), report)
    return outcome


def _settle(task: RunTask, exc: BaseException | None, report: Report) -> str:
    if exc is None:
        report(task.name, "done", "")
        return "done"
    msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if not isinstance(exc, (RunDied, RunFailed)):  # the engine itself failed (e.g. Ray lost the task)
        write_state(task.out, task.name, status="failed", error=f"{type(exc).__name__}: {exc}")
    report(task.name, "failed", msg)
    return "failed"


def _ray_execute(task: RunTask) -> dict:
    import ray

    return execute_run(task, node=ray.get_runtime_context().get_node_id()[:12])


def run_ray(tasks: list[RunTask], cfg: EngineConfig, retries: int, report: Report) -> dict[str, str]:
    try:
        import ray
    except ImportError:
        from hetero.errors import UsageError

        raise UsageError("--engine ray needs Ray: pip install -c constraints.txt -e '.[ray]' "
                         "(or use the default --engine local).") from None
    root = tasks[0].pythonpath if tasks else package_root()
    # workers import marl_backends from the driver's source tree (a cluster installs the package on every node)
    runtime_env = {"env_vars": {"PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}}
    started = False
    if not ray.is_initialized():
        # no --address: a fresh local instance ("local"), never a cluster that happens to run here
        ray.init(address=cfg.address or "local", runtime_env=runtime_env, log_to_driver=False,
                 include_dashboard=False if not cfg.address else None)
        started = True
    remote = ray.remote(_ray_execute).options(
        num_cpus=cfg.cpus_per_run, num_gpus=cfg.gpus_per_run, max_retries=retries, retry_exceptions=[RunDied],
        scheduling_strategy="SPREAD", runtime_env=runtime_env)
    refs = {remote.remote(t): t for t in tasks}
    outcome: dict[str, str] = {}
    try:
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                try:
                    ray.get(ref)
                    exc = None
                except ray.exceptions.RayTaskError as e:  # the run's own exception, re-raised by Ray
                    exc = e.as_instanceof_cause()
                    exc = exc if isinstance(exc, (RunDied, RunFailed)) else RunFailed(str(e))
                except Exception as e:  # noqa: BLE001 - worker/node lost beyond max_retries, etc.
                    exc = e
                outcome[refs[ref].name] = _settle(refs[ref], exc, report)
    finally:
        if started:
            ray.shutdown()
    return outcome


def run_sweep(spec: SweepSpec, cfg: EngineConfig, report: Report | None = None) -> dict[str, str]:
    """Execute every run of ``spec`` not yet done; returns {run name: done | failed | skipped}.
    Holds the sweep folder's lock (:class:`SweepLock`) while runs execute: a second ``run_sweep``
    on the same folder raises a UsageError naming the first one's PID."""
    report = report or (lambda name, what, msg: None)
    device = "cuda" if cfg.gpus_per_run > 0 else ""
    tasks = tasks_of(spec, device)
    if all(is_done(t) for t in tasks):  # a finished sweep: nothing to run, nothing to write
        return {t.name: "skipped" for t in tasks}
    spec.out.mkdir(parents=True, exist_ok=True)
    with SweepLock(spec.out):
        return _run_locked(spec, cfg, tasks, report)


def _run_locked(spec: SweepSpec, cfg: EngineConfig, tasks: list[RunTask], report: Report) -> dict[str, str]:
    todo = [t for t in tasks if not is_done(t)]  # under the lock: what a sweep before us left to do
    outcome = {t.name: "skipped" for t in tasks if t not in todo}
    write_json(spec.out / "sweep.json", {"name": spec.name, "command": spec.command, "source": spec.source,
                                         "runs": [t.name for t in tasks], "engine": cfg.engine,
                                         "slots": cfg.jobs if cfg.engine == "local" else None,
                                         "started": time.time()})
    retries = spec.retries if cfg.retries is None else cfg.retries
    if cfg.engine == "local":
        outcome.update(run_local(todo, cfg, retries, report))
    elif cfg.engine == "ray":
        outcome.update(run_ray(todo, cfg, retries, report))
    else:
        raise ValueError(f"unknown --engine {cfg.engine!r}; expected local or ray.")
    return outcome
