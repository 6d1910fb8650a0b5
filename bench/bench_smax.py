"""SMAX env-steps/s: JaxMARL's own vmapped step vs our torch-facing ``SmaxEnv`` (issue 6).

    python bench/bench_smax.py [--map 3s5z] [--envs 256] [--steps 200] [--out bench/results/smax.json]

Both sides step ``--envs`` battles with uniformly random *available* actions, auto-reset
included, in a Python loop over steps (one jitted vmapped call per step):

- ``jaxmarl``: ``jax.jit(jax.vmap(env.step))`` on JaxMARL's HeuristicEnemySMAX, actions sampled
  in JAX from the masks (the reference: JaxMARL as its authors use it, minus a full lax.scan).
- ``jaxmarl lax.scan``: the same, all steps in one compiled ``lax.scan`` (the upper bound: no
  Python between steps, hence no torch policy in the loop either). The observations are summed
  into the carry: a scan that ignores them lets XLA skip computing them (measured ~3.5x faster,
  which is not an env a policy could act in).
- ``hetero``: ``SmaxEnv.step`` with actions sampled in torch from ``avail_actions``; this adds
  the JAX -> torch hand-over, the mask guard, and the true-next-obs / reset-obs pair.
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch


def bench_jaxmarl(map_name: str, envs: int, steps: int, scan: bool = False) -> float:
    import jax
    import jax.numpy as jnp
    from jaxmarl.environments.smax import HeuristicEnemySMAX, map_name_to_scenario

    env = HeuristicEnemySMAX(scenario=map_name_to_scenario(map_name))
    agents = env.agents

    def sample(key, state):
        avail = env.get_avail_actions(state)
        mask = jnp.stack([avail[a] for a in agents])
        act = jax.random.categorical(key, jnp.where(mask > 0, 0.0, -1e9))
        return {a: act[i] for i, a in enumerate(agents)}

    def step(key, state):
        k1, k2 = jax.random.split(key)
        obs, state, rew, done, info = env.step(k1, state, sample(k2, state))
        return obs, state, rew, done

    reset = jax.jit(jax.vmap(env.reset))
    vstep = jax.jit(jax.vmap(step))
    key = jax.random.PRNGKey(0)
    _, state = reset(jax.random.split(key, envs))
    keys = jax.random.split(key, (steps + 1, envs))
    if scan:  # all steps inside one compiled lax.scan: no Python between steps (no policy outside JAX either)
        def body(carry, k):  # consume the observations, or XLA drops their computation altogether
            obs, st, rew, _ = vstep(k, carry[0])
            return (st, carry[1] + sum(o.sum() for o in obs.values())), None

        run = jax.jit(lambda st, ks: jax.lax.scan(body, (st, 0.0), ks)[0])
        jax.block_until_ready(run(state, keys[1:]))  # compile
        t0 = time.perf_counter()
        jax.block_until_ready(run(state, keys[1:]))
        return envs * steps / (time.perf_counter() - t0)
    out = vstep(keys[0], state)  # compile
    jax.block_until_ready(out)
    t0 = time.perf_counter()
    for t in range(1, steps + 1):
        obs, state, rew, done = vstep(keys[t], state)
    jax.block_until_ready(state)
    return envs * steps / (time.perf_counter() - t0)


def bench_hetero(map_name: str, envs: int, steps: int) -> float:
    from marl_backends.envs.smax import SmaxEnv

    env = SmaxEnv(map_name, num_envs=envs, seed=0)
    g = torch.Generator().manual_seed(0)
    o = env.reset(0)
    o = env.step(env.heuristic_actions(o, 1.0, g)).obs  # compile
    t0 = time.perf_counter()
    for _ in range(steps):
        u = torch.rand(o.avail_actions.shape, generator=g)
        o = env.step((u * o.avail_actions).argmax(-1)).obs
    return envs * steps / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--map", default="3s5z")
    p.add_argument("--envs", type=int, nargs="+", default=[256])
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--out", default="")
    a = p.parse_args()
    torch.set_num_threads(1)
    rows = []
    for e in a.envs:
        scan = bench_jaxmarl(a.map, e, a.steps, scan=True)
        ref = bench_jaxmarl(a.map, e, a.steps)
        ours = bench_hetero(a.map, e, a.steps)
        rows.append({"map": a.map, "envs": e, "jaxmarl_scan_steps_per_s": round(scan), "jaxmarl_steps_per_s": round(ref),
                     "hetero_steps_per_s": round(ours), "ratio": round(ours / ref, 3),
                     "ratio_vs_scan": round(ours / scan, 3)})
        print(f"{a.map} envs={e}: jaxmarl lax.scan {scan:,.0f}, jaxmarl step loop {ref:,.0f}, hetero SmaxEnv "
              f"{ours:,.0f} env-steps/s ({ours / ref:.2f}x the loop, {ours / scan:.2f}x the scan)")
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps({"rows": rows, "steps": a.steps, "machine": platform.platform(),
                                           "cpus": torch.get_num_threads()}, indent=1) + "\n")


if __name__ == "__main__":
    main()
