"""Sweeps: grids of ``hetero train`` / ``hetero quantify`` runs from a sweep file, executed by a
local process pool or Ray, resumable from the sweep folder, reported as tables and figures."""
from marl_backends.sweep.engines import EngineConfig, run_sweep
from marl_backends.sweep.report import write_report
from marl_backends.sweep.spec import RunSpec, SweepSpec, load_spec
from marl_backends.sweep.status import sweep_status

__all__ = ["EngineConfig", "RunSpec", "SweepSpec", "load_spec", "run_sweep", "sweep_status", "write_report"]
