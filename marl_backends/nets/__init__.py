"""Grouped networks: parameters stacked per group, agent -> group layout changeable at run time."""
from marl_backends.nets.grouped import (
    GroupedLayerNorm,
    GroupedLeaf,
    GroupedLinear,
    GroupedMLP,
    GroupedParam,
    LayoutModule,
    init_generator,
)
from marl_backends.nets.gru import GroupedGRU, GroupedGRUNet
from marl_backends.nets.layout import SHARING_HELP, Sharing, canonical_layout, check_layout, parse_sharing
from marl_backends.nets.optim import GroupedAdam
from marl_backends.nets.policy import GroupedPolicy, StateCritic, kl_new_old, make_policy
from marl_backends.nets.regroup import apply_plan, mix_rows, mixing_matrix

__all__ = [
    "GroupedLayerNorm", "GroupedLeaf", "GroupedLinear", "GroupedMLP", "GroupedParam", "LayoutModule",
    "init_generator", "GroupedGRU", "GroupedGRUNet", "SHARING_HELP", "Sharing", "canonical_layout",
    "check_layout", "parse_sharing", "GroupedAdam", "GroupedPolicy", "StateCritic", "kl_new_old",
    "make_policy", "apply_plan", "mix_rows", "mixing_matrix",
]
