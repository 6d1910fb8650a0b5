"""Off-policy trainers: MATD3 and OMDPG (Yu et al.) on one replay-buffer core, for continuous
and (one-hot, masked; :mod:`marl_backends.offpolicy.discrete`) discrete actions.

Public API: :class:`OffPolicyConfig` with presets :func:`matd3` / :func:`omdpg` (and
``ABLATION`` for the paper's Fig. 6 variants), :class:`OffPolicyTrainer` (implements
``hetero.protocols.SharingTrainer``), :class:`ReplayBuffer`, the OMDPG math in
:mod:`marl_backends.offpolicy.omq`; checkpoints (exact resume, :func:`load_offpolicy_trainer`,
:func:`is_offpolicy_checkpoint`) in :mod:`marl_backends.offpolicy.checkpoint`.
"""
from marl_backends.offpolicy.buffer import Batch, ReplayBuffer
from marl_backends.offpolicy.checkpoint import is_offpolicy_checkpoint, load_offpolicy_trainer
from marl_backends.offpolicy.config import ABLATION, OffPolicyConfig, matd3, omdpg
from marl_backends.offpolicy.omq import omq_actor_loss, omq_joint_actions, ood_joint_actions, pu_target
from marl_backends.offpolicy.trainer import OffPolicyTrainer

__all__ = [
    "ABLATION", "Batch", "OffPolicyConfig", "OffPolicyTrainer", "ReplayBuffer", "is_offpolicy_checkpoint",
    "load_offpolicy_trainer", "matd3", "omdpg",
    "omq_actor_loss", "omq_joint_actions", "ood_joint_actions", "pu_target",
]
