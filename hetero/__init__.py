"""hetero: quantify agent heterogeneity in MARL and use it for dynamic parameter sharing."""
from hetero.plan import RegroupPlan
from hetero.protocols import ModelAccess, SharingTrainer
from hetero.regroup import apply_plan
from hetero.samples import SamplePool

__version__ = "0.1.0"
__all__ = ["RegroupPlan", "apply_plan", "ModelAccess", "SharingTrainer", "SamplePool", "HetDPS", "HetDPSConfig"]


def __getattr__(name: str):  # lazy: HetDPS pulls in quantify/sklearn only when used
    if name in ("HetDPS", "HetDPSConfig"):
        from hetero import hetdps

        return getattr(hetdps, name)
    raise AttributeError(f"module 'hetero' has no attribute {name!r}")
