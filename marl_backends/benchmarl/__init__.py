"""HetDPS and heterogeneity measurement inside BenchMARL (optional extra ``benchmarl``).

- :class:`GroupedMlpConfig`: a BenchMARL model config whose network holds one parameter row per
  agent and a run-time agent -> group layout (``model.py``).
- :class:`HetDPSCallback`: every K iterations, a HetDPS round on the collected batch (quantify ->
  cluster -> match) applied to that model and to BenchMARL's Adam state (``callbacks.py``).
- :class:`HeterogeneityMonitor`: measurement only (Meta-Het / Policy-Het matrices over training,
  heatmaps in the run folder), for any BenchMARL policy.

Install: ``pip install -c constraints.txt -e '.[benchmarl]'``. Example: README, "BenchMARL".
"""
from __future__ import annotations

try:
    import benchmarl  # noqa: F401
except ImportError as err:  # pragma: no cover - only without the extra
    raise ImportError(
        "marl_backends.benchmarl needs BenchMARL; install the extra: pip install -c constraints.txt -e '.[benchmarl]'"
    ) from err

from marl_backends.benchmarl.model import GroupedMlp, GroupedMlpConfig, grouped_models

__all__ = ["GroupedMlp", "GroupedMlpConfig", "grouped_models"]
