"""A BenchMARL model whose parameters are stacked per group, with a run-time agent -> group layout.

BenchMARL builds one model per agent group (e.g. all VMAS agents in group ``"agents"``) and either
shares one network across the group or gives every agent its own (``share_policy_params``).
:class:`GroupedMlp` sits between the two and can move between them while training (HetDPS, paper
Sec. 5): its layers hold ``N`` parameter rows (one per agent of the BenchMARL group, the most
groups a layout can need), and a ``layout`` buffer [N] says which row agent ``i`` uses. A forward
pass gathers every agent's row and runs one batched matmul per layer (our :class:`GroupedMLP`,
TorchRL's MultiAgentMLP idea with a layout), never a Python loop over agents.

Why a fixed bank of ``N`` rows and in-place regrouping: TorchRL's losses keep a functional copy
of the policy whose parameters share storage with the policy the collector runs, and BenchMARL's
Adam holds those same tensors. :meth:`GroupedMlp.regroup_` therefore writes the plan's mixing
(new group ``g`` = ``sum_k w_gk old[s_gk]``, App. I) *into* the existing rows, moments and layout
in place; no tensor is replaced, so every copy sees the new grouping at once. Rows beyond the
new group count are left unused (they receive zero gradient).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

import torch
from benchmarl.models.common import Model, ModelConfig
from tensordict import TensorDictBase
from torch import Tensor

from hetero.plan import RegroupPlan
from marl_backends.nets.grouped import GroupedMLP, activation_fn
from marl_backends.nets.layout import canonical_layout, check_layout, parse_sharing
from marl_backends.nets.regroup import mix_rows

_BASE_KEYS = ("input_spec", "output_spec", "agent_group", "input_has_agent_dim", "n_agents", "centralised",
              "share_params", "device", "action_spec", "model_index", "is_critic")


class GroupedMlp(Model):
    """MLP with per-group parameter rows; see :class:`GroupedMlpConfig` for the arguments.

    Input cases (BenchMARL's): a decentralised policy (input [..., N, D], agent ``i`` sees its own
    row), a centralised model with agent dim (input flattened to [..., N*D] and given to every
    agent's row) and a global-state model (input [..., D] given to every agent's row). The output
    always has the agent dim [..., N, out].
    """

    def __init__(self, num_cells: Sequence[int], activation: str, init_layout: str, layer_norm: bool,
                 out_gain: float, seed: int, **kwargs) -> None:  # noqa: ANN003
        super().__init__(**{k: kwargs.pop(k) for k in _BASE_KEYS})
        if kwargs:
            raise TypeError(f"GroupedMlp got unexpected arguments {sorted(kwargs)}.")
        if not self.output_has_agent_dim:
            raise ValueError(
                f"GroupedMlp gives each agent its group's output, but BenchMARL asked group {self.agent_group!r} "
                "for one shared centralised output (share_params=True and centralised=True, e.g. MAPPO's critic "
                "with share_param_critic=True). Use BenchMARL's MlpConfig as critic_model_config, or set "
                "share_param_critic=False.")
        n = self.n_agents
        feats = sum(int(spec.shape[-1]) for spec in self.input_spec.values(True, True))
        in_dim = feats * n if (self.centralised and self.input_has_agent_dim) else feats
        out_dim = int(self.output_leaf_spec.shape[-1])
        activation_fn(activation)  # raises on an unknown name
        gen = torch.Generator().manual_seed(int(seed) + 7919 * int(self.is_critic) + 104729 * int(self.model_index))
        # the row bank: N rows, row r = group r's parameters (net.layout stays the identity)
        self.net = GroupedMLP(in_dim, out_dim, tuple(num_cells), tuple(range(n)), activation,
                              layer_norm=layer_norm, out_gain=out_gain, generator=gen).to(self.device)
        layout = _initial_layout(init_layout, n)
        self.register_buffer("layout", torch.tensor(layout, dtype=torch.long, device=self.device))

    # --- layout -------------------------------------------------------------------------------
    @property
    def layout_tuple(self) -> tuple[int, ...]:
        return tuple(int(x) for x in self.layout.tolist())

    @property
    def n_groups(self) -> int:
        return int(self.layout.max().item()) + 1

    def grouped_parameters(self) -> list[torch.nn.Parameter]:
        """Every parameter with the leading row dim (all of them)."""
        return list(self.net.parameters())

    @torch.no_grad()
    def regroup_(self, plan: RegroupPlan, optimizers: Iterable[torch.optim.Optimizer] = ()) -> None:
        """Apply ``plan`` in place: parameter rows, the optimisers' per-row state, the layout.

        ``optimizers``: torch optimisers that may hold these parameters (others are skipped);
        their state tensors shaped like a parameter (Adam's moments, SGD momentum) are remapped
        like it, scalar state (Adam's step) is kept. Raises ValueError, changing nothing, when the
        plan was made against another layout.
        """
        if tuple(plan.old_layout) != self.layout_tuple:
            raise ValueError(f"RegroupPlan was made against layout {tuple(plan.old_layout)} but group "
                             f"{self.agent_group!r} has layout {self.layout_tuple}; rebuild it from the current layout.")
        if len(plan.layout) != self.n_agents:
            raise ValueError(f"RegroupPlan has {len(plan.layout)} agents; group {self.agent_group!r} has {self.n_agents}.")
        g_old, g_new = max(plan.old_layout) + 1, plan.n_groups
        params = self.grouped_parameters()
        ptrs = {p.data_ptr(): p for p in params}
        # 1) compute: new rows for parameters and for every optimiser tensor that mirrors one
        todo: list[tuple[Tensor, Tensor]] = [(p.data, mix_rows(p.data[:g_old], plan)) for p in params]
        for opt in optimizers:
            for group in opt.param_groups:
                for q in group["params"]:
                    p = ptrs.get(q.data_ptr())
                    if p is None or q.shape != p.shape:
                        continue
                    for v in opt.state.get(q, {}).values():
                        if isinstance(v, Tensor) and v.shape == p.shape:
                            todo.append((v, mix_rows(v[:g_old], plan)))
        # 2) commit in place (views and functional copies share this storage)
        for dst, rows in todo:
            dst[:g_new].copy_(rows)
        self.layout.copy_(torch.tensor(plan.layout, dtype=torch.long, device=self.layout.device))

    # --- forward ------------------------------------------------------------------------------
    def _forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        x = torch.cat([tensordict.get(k) for k in self.in_keys], dim=-1)
        n = self.n_agents
        if self.input_has_agent_dim and self.centralised:
            x = x.flatten(-2).unsqueeze(-2).expand(*x.shape[:-2], n, x.shape[-2] * x.shape[-1])
        elif not self.input_has_agent_dim:
            x = x.unsqueeze(-2).expand(*x.shape[:-1], n, x.shape[-1])
        lead = x.shape[:-2]
        xa = x.reshape(-1, n, x.shape[-1]).transpose(0, 1)  # agent-major [N, B, D]
        y = self.net.forward_am(xa, self.layout)  # the layout is read from the tensor on every call
        tensordict.set(self.out_key, y.transpose(0, 1).reshape(*lead, n, -1))
        return tensordict


def _initial_layout(text: str, n: int) -> tuple[int, ...]:
    """fps | nps | groups:0,0,1 | 0,0,1 -> a layout of ``n`` agents."""
    t = text.strip().lower()
    if t in ("fps", "nps") or t.startswith("groups:"):
        return parse_sharing(t, n).layout
    try:
        labels = [int(x) for x in t.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"GroupedMlpConfig.init_layout={text!r}; use fps, nps, groups:0,0,1,... or 0,0,1,... "
                         f"(one label per agent of the BenchMARL group, {n} here).") from None
    return check_layout(canonical_layout(labels), n)


@dataclass
class GroupedMlpConfig(ModelConfig):
    """Config of :class:`GroupedMlp` (BenchMARL ``ModelConfig``, like its ``MlpConfig``).

    Attributes:
        num_cells: hidden layer sizes (BenchMARL's default MLP: 256, 256).
        activation: hidden activation: tanh | relu | elu | gelu | leaky_relu.
        init_layout: the layout at the start: fps (one shared network), nps (one per agent),
            groups:0,0,1,1 or 0,0,1,1 (one label per agent of the BenchMARL group, in its order).
        layer_norm: LayerNorm after every hidden activation.
        out_gain: orthogonal-init gain of the output layer (e.g. 0.01 for a policy).
        seed: seed of the initial weights.

    BenchMARL's ``share_policy_params`` does not apply: ``init_layout`` decides who shares, and a
    :class:`~marl_backends.benchmarl.callbacks.HetDPSCallback` changes it while training.
    """

    num_cells: Sequence[int] = field(default_factory=lambda: [256, 256])
    activation: str = "tanh"
    init_layout: str = "fps"
    layer_norm: bool = False
    out_gain: float = 1.0
    seed: int = 0

    @staticmethod
    def associated_class():  # noqa: ANN205
        return GroupedMlp

    @classmethod
    def from_mlp(cls, mlp, **kw) -> "GroupedMlpConfig":  # noqa: ANN001, ANN003
        """The grouped twin of a BenchMARL ``MlpConfig`` (same cells, activation, LayerNorm);
        ``kw`` sets the other fields, e.g. ``init_layout="nps"``."""
        name = {"leakyrelu": "leaky_relu"}.get(mlp.activation_class.__name__.lower(), mlp.activation_class.__name__.lower())
        norm = getattr(mlp, "norm_class", None)
        return cls(num_cells=list(mlp.num_cells), activation=name,
                   layer_norm=norm is not None and issubclass(norm, torch.nn.LayerNorm), **kw)


def grouped_models(module: torch.nn.Module) -> list[GroupedMlp]:
    """Every :class:`GroupedMlp` inside ``module`` (a BenchMARL policy or critic)."""
    return [m for m in module.modules() if isinstance(m, GroupedMlp)]
