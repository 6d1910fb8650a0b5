"""Grouped layers: parameters stacked per group, one batched op for all agents.

Every parameter of a :class:`GroupedLeaf` has a leading group dimension ``G``; agent ``i`` uses
row ``layout[i]``. A forward pass for ``n`` agents is one ``baddbmm`` over the gathered rows
(TorchRL's MultiAgentMLP idea, generalised to an agent -> group layout), never a Python loop
over agents. Internally tensors are agent-major ``[n, B, D]`` so consecutive layers need no
transposes; the public :class:`GroupedMLP` takes and returns ``[..., n, D]``.

Fast paths: one group (FPS) is a plain ``addmm``; the identity layout (NPS) skips the gather.
A layout of a few groups (e.g. 5/5/5) runs *group-major* for the whole team: the agents' rows
are put group after group, ``[G, m*B, D]`` (m = the largest group, smaller groups padded), so
each layer is one ``baddbmm`` against the stacked parameters themselves, with no per-agent copy
of the weights on the way forward and no scatter of their gradients on the way back.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from marl_backends.nets.layout import check_layout

ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "relu": torch.relu,
    "tanh": torch.tanh,
    "elu": F.elu,
    "gelu": F.gelu,
    "leaky_relu": F.leaky_relu,
    "identity": lambda x: x,
}
_GAIN_NAME = {"relu": "relu", "tanh": "tanh", "leaky_relu": "leaky_relu", "elu": "relu", "gelu": "relu", "identity": "linear"}


def activation_fn(name: str) -> Callable[[Tensor], Tensor]:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; expected one of {sorted(ACTIVATIONS)}.")
    return ACTIVATIONS[name]


def activation_gain(name: str) -> float:
    return nn.init.calculate_gain(_GAIN_NAME.get(name, "linear"))


class GroupedLeaf(nn.Module):
    """Base of modules whose parameters all have a leading group dimension ``n_groups``."""

    n_groups: int

    def resize_groups(self, n_groups: int) -> None:
        """Reallocate every parameter for ``n_groups`` groups (values zeroed; used before loading)."""
        for name, p in list(self.named_parameters(recurse=False)):
            p.data = torch.zeros((n_groups, *p.shape[1:]), dtype=p.dtype, device=p.device)
        self.n_groups = n_groups


def _rows(p: Tensor, gidx: Tensor | None) -> Tensor:
    """Rows of a grouped parameter for each agent: ``p`` itself when ``gidx`` is the identity."""
    return p if gidx is None else p.index_select(0, gidx)


class GroupedLinear(GroupedLeaf):
    """``y_i = x_i W[g_i] + b[g_i]`` for all agents at once. weight [G, in, out], bias [G, out]."""

    def __init__(self, in_dim: int, out_dim: int, n_groups: int, gain: float = 1.0,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.in_dim, self.out_dim, self.n_groups = in_dim, out_dim, n_groups
        self.weight = nn.Parameter(torch.empty(n_groups, in_dim, out_dim))
        self.bias = nn.Parameter(torch.zeros(n_groups, out_dim))
        with torch.no_grad():
            for g in range(n_groups):  # init only; each group gets its own orthogonal draw
                w = torch.empty(out_dim, in_dim)
                nn.init.orthogonal_(w, gain=gain, generator=generator)
                self.weight[g].copy_(w.t())

    def forward_am(self, x: Tensor, gidx: Tensor | None) -> Tensor:
        """x [n, B, in] agent-major, gidx [n] group of each row (None = identity) -> [n, B, out]."""
        n, b, _ = x.shape
        if self.n_groups == 1:
            return torch.addmm(self.bias[0], x.reshape(n * b, -1), self.weight[0]).view(n, b, -1)
        return torch.baddbmm(_rows(self.bias, gidx).unsqueeze(1), x, _rows(self.weight, gidx))


class GroupedLayerNorm(GroupedLeaf):
    """LayerNorm over the last dim with a per-group affine transform (weight/bias [G, D])."""

    def __init__(self, dim: int, n_groups: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.dim, self.n_groups, self.eps = dim, n_groups, eps
        self.weight = nn.Parameter(torch.ones(n_groups, dim))
        self.bias = nn.Parameter(torch.zeros(n_groups, dim))

    def forward_am(self, x: Tensor, gidx: Tensor | None) -> Tensor:
        if self.n_groups == 1:
            return F.layer_norm(x, (self.dim,), self.weight[0], self.bias[0], self.eps)
        y = F.layer_norm(x, (self.dim,), eps=self.eps)
        return torch.addcmul(_rows(self.bias, gidx).unsqueeze(1), y, _rows(self.weight, gidx).unsqueeze(1))


class GroupedParam(GroupedLeaf):
    """A free per-group tensor (e.g. a state-independent log-std), shape [G, *shape]."""

    def __init__(self, shape: Sequence[int], n_groups: int, init: float = 0.0) -> None:
        super().__init__()
        self.n_groups = n_groups
        self.value = nn.Parameter(torch.full((n_groups, *shape), float(init)))

    def forward_am(self, gidx: Tensor | None, n: int) -> Tensor:
        """The rows for ``n`` agents -> [n, *shape]."""
        if self.n_groups == 1:
            return self.value.expand(n, *self.value.shape[1:])
        return _rows(self.value, gidx)


class LayoutModule(nn.Module):
    """A module that owns an agent -> group layout (buffer ``layout`` [N], long)."""

    def __init__(self, layout: Sequence[int]) -> None:
        super().__init__()
        layout = check_layout(layout)
        self.register_buffer("layout", torch.tensor(layout, dtype=torch.long), persistent=True)
        self._refresh()

    def _refresh(self) -> None:
        lay = self.layout
        self.n_agents = int(lay.numel())
        self.n_groups = int(lay.max().item()) + 1
        self._identity = self.n_groups == self.n_agents and bool((lay == torch.arange(self.n_agents, device=lay.device)).all())
        self._major = None if self._identity or self.n_groups == 1 else group_major_index(lay, self.n_groups)

    @property
    def layout_tuple(self) -> tuple[int, ...]:
        return tuple(int(x) for x in self.layout.tolist())

    def set_layout(self, layout: Sequence[int]) -> None:
        """Change the layout in place (parameters must already have ``max(layout)+1`` groups)."""
        layout = check_layout(layout, self.n_agents)
        self.layout = torch.tensor(layout, dtype=torch.long, device=self.layout.device)
        self._refresh()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # noqa: ANN001
        key = prefix + "layout"
        if key in state_dict:  # resize grouped params to the checkpoint's group count first
            g = int(state_dict[key].max().item()) + 1
            for m in self.modules():
                if isinstance(m, GroupedLeaf) and m.n_groups != g:
                    m.resize_groups(g)
            self.layout = state_dict[key].clone().to(self.layout.device)
            self._refresh()
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def group_index(self, agents: Tensor | None = None) -> Tensor | None:
        """Group of each selected agent ([n] long), or None when it is the identity (fast path)."""
        if agents is None:
            return None if self._identity else self.layout
        return self.layout.index_select(0, agents)


def group_major_index(layout: Tensor, n_groups: int) -> tuple[Tensor | None, Tensor | None, int] | None:
    """Where each agent sits when rows are laid out group after group, for a layout of ``n``
    agents in ``G`` groups of at most ``m``: (slots [G*m] agent per slot, ``n`` = padding; inverse
    [n] slot of each agent; m). Both are None when the layout is already contiguous and equal-sized
    (a plain view). None when padding would add more than a quarter of the rows (the gather path
    is cheaper then)."""
    n = int(layout.numel())
    sizes = torch.bincount(layout, minlength=n_groups)
    m = int(sizes.max())
    if n_groups * m > n + n // 4:
        return None
    order = torch.argsort(layout, stable=True)  # agents group by group, in their own order within a group
    if n_groups * m == n and bool((order == torch.arange(n, device=layout.device)).all()):
        return None, None, m
    starts = torch.cumsum(sizes, 0) - sizes
    rank = torch.arange(n, device=layout.device) - starts[layout[order]]  # position inside the group
    slots = torch.full((n_groups * m,), n, dtype=torch.long, device=layout.device)
    slots[layout[order] * m + rank] = order
    inverse = torch.empty(n, dtype=torch.long, device=layout.device)
    inverse[order] = layout[order] * m + rank
    return slots, inverse, m


class GroupedMLP(LayoutModule):
    """An MLP whose parameters are stacked per group; ``forward`` runs all agents in one op.

    Args:
        in_dim, out_dim: input and output sizes (the same for every agent; pad if they differ).
        hidden: hidden layer sizes, e.g. ``(128, 128)``.
        layout: agent -> group, e.g. ``(0, 1, 2)`` (NPS), ``(0, 0, 0)`` (FPS), ``(0, 0, 1)``.
        activation: hidden activation name (relu, tanh, elu, gelu, leaky_relu).
        input_norm: LayerNorm on the input ("feature normalisation", HARL App. K Table 4).
        layer_norm: LayerNorm after each hidden activation (as HARL's MLP base).
        out_gain: orthogonal-init gain of the output layer (0.01 for actors, 1 for critics).
        out_activation: optional output activation (e.g. ``"tanh"`` for deterministic actors).
        generator: RNG for the initial weights (reproducible from a seed).
    """

    def __init__(self, in_dim: int, out_dim: int, hidden: Sequence[int], layout: Sequence[int],
                 activation: str = "relu", input_norm: bool = False, layer_norm: bool = False,
                 out_gain: float = 1.0, out_activation: str | None = None,
                 generator: torch.Generator | None = None) -> None:
        super().__init__(layout)
        g = self.n_groups
        self.in_dim, self.out_dim, self.hidden = in_dim, out_dim, tuple(hidden)
        self.act_name, self.out_act_name = activation, out_activation
        self.act = activation_fn(activation)
        self.out_act = activation_fn(out_activation) if out_activation else None
        self.input_norm = GroupedLayerNorm(in_dim, g) if input_norm else None
        dims = [in_dim, *self.hidden]
        gain = activation_gain(activation)
        self.layers = nn.ModuleList(GroupedLinear(a, b, g, gain, generator) for a, b in zip(dims[:-1], dims[1:]))
        self.norms = nn.ModuleList(GroupedLayerNorm(d, g) for d in self.hidden) if layer_norm else None
        self.head = GroupedLinear(dims[-1], out_dim, g, out_gain, generator)

    def forward_am(self, x: Tensor, gidx: Tensor | None) -> Tensor:
        """Agent-major forward: x [n, B, in] -> [n, B, out]."""
        if self.input_norm is not None:
            x = self.input_norm.forward_am(x, gidx)
        for k, layer in enumerate(self.layers):
            x = self.act(layer.forward_am(x, gidx))
            if self.norms is not None:
                x = self.norms[k].forward_am(x, gidx)
        x = self.head.forward_am(x, gidx)
        return self.out_act(x) if self.out_act is not None else x

    def forward_group_major(self, x: Tensor) -> Tensor:
        """All N agents, group-major (see the module docstring): x [N, B, in] -> [N, B, out]."""
        slots, inverse, m = self._major
        b, g = x.shape[1], self.n_groups
        if slots is not None:  # pad with a zero row (index n) and put the agents group after group
            x = torch.cat([x, x.new_zeros(1, b, x.shape[-1])]).index_select(0, slots)
        x = self.forward_am(x.reshape(g, m * b, -1), None)  # row k of x is group k: the identity gather
        x = x.reshape(g * m, b, -1)
        return x if inverse is None else x.index_select(0, inverse)

    def forward(self, x: Tensor, agents: Tensor | None = None) -> Tensor:
        """x [..., n, in] -> [..., n, out]; ``agents`` [n] selects which agents the n columns are
        (default: all N agents in order)."""
        lead, n = x.shape[:-2], x.shape[-2]
        xa = x.reshape(-1, n, x.shape[-1]).transpose(0, 1)
        if agents is None and self._major is not None:
            y = self.forward_group_major(xa)
        else:
            y = self.forward_am(xa, self.group_index(agents))
        return y.transpose(0, 1).reshape(*lead, n, -1)


def group_sizes(layout: Tensor, n_groups: int) -> Tensor:
    """Number of agents in each group, [G] float."""
    return torch.bincount(layout, minlength=n_groups).float()


def init_generator(seed: int) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(int(seed) % (2**63 - 1))
    return g


__all__ = [
    "GroupedLeaf", "GroupedLinear", "GroupedLayerNorm", "GroupedParam", "LayoutModule", "GroupedMLP",
    "group_major_index",
    "group_sizes", "init_generator", "activation_fn", "ACTIVATIONS",
]
