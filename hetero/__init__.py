"""hetero: quantify agent heterogeneity in MARL and use it for dynamic parameter sharing."""
from hetero.plan import RegroupPlan
from hetero.protocols import ModelAccess, SharingTrainer
from hetero.samples import SamplePool

__all__ = ["RegroupPlan", "ModelAccess", "SharingTrainer", "SamplePool"]
__version__ = "0.1.0"
