"""A synthetic sample pool whose agents differ only by group, for testing quantify() fast."""
import torch

from hetero.samples import SamplePool


def synthetic_pool(groups=(0, 0, 0, 1, 1, 1), rows=800, seed=0, heterogeneous=True) -> SamplePool:
    g = torch.Generator().manual_seed(seed)
    n = len(groups)
    grp = torch.tensor(groups)
    s = torch.randn(rows, n, 4, generator=g)
    a = torch.nn.functional.one_hot(torch.randint(5, (rows, n), generator=g), 5).float()
    w = torch.randn(max(groups) + 1, 4, 6, generator=g)
    if not heterogeneous:
        w = w[:1].expand_as(w)
    s2 = s + 0.1 * a[..., :4]
    o = s @ w[0]
    o2 = torch.einsum("tnd,nde->tne", s2, w[grp]) + 0.05 * torch.randn(rows, n, 6, generator=g)
    r = -(s2 - (grp[None, :, None].float() if heterogeneous else 0.0)).norm(dim=-1)
    state = s.flatten(1)
    return SamplePool(state=state, next_state=s2.flatten(1), local_state=s, obs=o, action=a, reward=r,
                      next_local_state=s2, next_obs=o2, episode=torch.arange(rows) % 16)
