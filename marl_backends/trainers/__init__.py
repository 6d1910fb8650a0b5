"""On-policy trainers (MAPPO, HAPPO, HAMDPO) on grouped networks; run folders and checkpoints."""
from marl_backends.trainers.checkpoint import TRAINERS, load_trainer, make_trainer, save_checkpoint
from marl_backends.trainers.config import TrainConfig
from marl_backends.trainers.hamdpo import HAMDPOTrainer
from marl_backends.trainers.happo import HAPPOTrainer
from marl_backends.trainers.loop import train
from marl_backends.trainers.mappo import MAPPOTrainer
from marl_backends.trainers.onpolicy import OnPolicyTrainer

__all__ = [
    "TRAINERS", "load_trainer", "make_trainer", "save_checkpoint", "TrainConfig", "HAMDPOTrainer",
    "HAPPOTrainer", "MAPPOTrainer", "OnPolicyTrainer", "train",
]
