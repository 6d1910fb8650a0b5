"""case_studies/smac_heterogeneity.py: the unit-type bit mask hits exactly the type one-hots."""
from __future__ import annotations

import pytest
import torch

pytest.importorskip("jaxmarl", reason="SMAX needs the optional extra: pip install -e '.[smax]'")

from case_studies.smac_heterogeneity import strip_unit_types, type_bit_mask  # noqa: E402
from marl_backends.envs import collect_pool, make_env  # noqa: E402
from marl_backends.envs.smax import UNIT_TYPE_NAMES  # noqa: E402


def test_type_bits_are_found_and_stripped():
    env = make_env("smax_2s3z", num_envs=8, seed=0)
    s = env.spec
    mask = type_bit_mask(s.obs_dim, s.n_agents, s.action_dim - 5)
    assert int(mask.sum()) == (s.n_agents - 1 + s.action_dim - 5) * 6 + 6
    o = env.reset(seed=0)
    bits = o.obs[..., mask].view(8, s.n_agents, -1, 6)
    assert set(bits.unique().tolist()) <= {0.0, 1.0} and bool((bits.sum(-1) <= 1).all())
    own = bits[:, :, -1].argmax(-1)  # the agent's own one-hot is the last block
    want = torch.tensor([UNIT_TYPE_NAMES.index(t) for t in env.unit_type_names])
    assert torch.equal(own, want.expand(8, -1))
    assert not bool(o.obs[..., ~mask].eq(1.0).all())  # the mask is not everything
    pool = collect_pool(env, steps=5, seed=0, progress=False)
    stripped = strip_unit_types(pool, mask)
    assert bool((stripped.obs[..., mask] == 0).all()) and bool((stripped.next_obs[..., mask] == 0).all())
    assert torch.equal(stripped.obs[..., ~mask], pool.obs[..., ~mask])
