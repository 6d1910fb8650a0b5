"""Planted-structure sample pools: agents whose meta-transitions differ only by a known type.

Used by the calibration study (``case_studies/calibration.py``) and its test. Every agent follows
s' = s + B_g a + noise (a random walk driven by random one-hot actions, episodes of ``steps``),
observes o' = W_g s' + noise and earns r = -|s' - c_g|. Type g's (B_g, W_g, c_g) sit ``effect``
away from a common base (effect = 0: all agents alike), so the effect size is one number.

``behaviour`` > 0 gives every agent its own action preferences (softmax of ``behaviour`` x a
standard normal vector per agent) instead of uniform actions: agents then visit different
(s, a) while their transition functions stay as planted -- the null a behaviour-invariant test
must keep (NPS policies, roles with their own heuristics).
"""
from __future__ import annotations

import torch

from hetero.samples import SamplePool


def planted_pool(types, effect: float = 1.0, episodes: int = 32, steps: int = 25, seed: int = 0,
                 shuffle: bool = True, behaviour: float = 0.0) -> tuple[SamplePool, tuple[int, ...]]:
    """A pool of len(types) agents with the given type of each agent; returns (pool, true labels).

    With ``shuffle`` the agents' order is permuted (seeded), so a method cannot lean on index order.
    """
    g = torch.Generator().manual_seed(seed)
    types = torch.as_tensor(types)
    if shuffle:
        types = types[torch.randperm(len(types), generator=g)]
    n, k, dl, da, do = len(types), int(types.max()) + 1, 4, 5, 6
    base_b, base_w = torch.randn(da, dl, generator=g) * 0.3, torch.randn(dl, do, generator=g) / dl ** 0.5
    dirs_b = torch.randn(k, da, dl, generator=g)
    dirs_w = torch.randn(k, dl, do, generator=g)
    dirs_c = torch.randn(k, dl, generator=g)
    scale = lambda t: t / t.flatten(1).norm(dim=1).view(-1, *[1] * (t.dim() - 1))  # noqa: E731
    b = base_b + 0.3 * effect * scale(dirs_b)[types]  # [N, Da, Dl]
    w = base_w + effect * scale(dirs_w)[types]
    c = effect * scale(dirs_c)[types]
    rows = episodes * steps
    s = torch.randn(episodes, n, dl, generator=g)
    cols = {key: [] for key in ("s", "a", "s2", "o", "o2")}
    o = torch.einsum("end,ndo->eno", s, w)
    if behaviour > 0:  # its own generator: the dynamics' draws stay those of behaviour = 0
        gb = torch.Generator().manual_seed(seed + 7919)
        probs = torch.softmax(behaviour * torch.randn(n, da, generator=gb), -1)
    for _ in range(steps):
        if behaviour > 0:
            idx = torch.multinomial(probs.repeat(episodes, 1), 1, generator=gb).view(episodes, n)
        else:
            idx = torch.randint(da, (episodes, n), generator=g)
        a = torch.nn.functional.one_hot(idx, da).float()
        s2 = 0.9 * s + torch.einsum("ena,nad->end", a, b) + 0.1 * torch.randn(episodes, n, dl, generator=g)
        o2 = torch.einsum("end,ndo->eno", s2, w) + 0.05 * torch.randn(episodes, n, do, generator=g)
        for key, v in (("s", s), ("a", a), ("s2", s2), ("o", o), ("o2", o2)):
            cols[key].append(v)
        s, o = s2, o2
    cat = {key: torch.stack(v, 0).reshape(rows, n, -1) for key, v in cols.items()}  # time-major rows
    r = -(cat["s2"] - c).norm(dim=-1)
    episode = torch.arange(episodes).repeat(steps)
    pool = SamplePool(state=cat["s"].flatten(1), next_state=cat["s2"].flatten(1), local_state=cat["s"],
                      obs=cat["o"], action=cat["a"], reward=r, next_local_state=cat["s2"], next_obs=cat["o2"],
                      episode=episode)
    return pool, tuple(int(v) for v in types)
