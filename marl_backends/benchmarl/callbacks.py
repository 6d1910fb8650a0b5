"""BenchMARL callbacks: HetDPS rounds (:class:`HetDPSCallback`) and measurement only (:class:`HeterogeneityMonitor`).

Both read BenchMARL's collected batch (``on_batch_collected``) as a :class:`hetero.SamplePool`
and act after the agent group's update (``on_train_end``), before the collector receives the new
weights. :class:`HetDPSCallback` hands a :class:`BenchmarlSharing` adapter (our
:class:`hetero.SharingTrainer` protocol over one BenchMARL agent group) to the unchanged
:class:`hetero.HetDPS` controller, so a round is exactly our trainers' round (Alg. 1: quantify ->
noise-floor-aware Affinity Propagation -> overlap + Hungarian ``match`` -> ``RegroupPlan``).
Results go through BenchMARL's own loggers (``experiment.logger.log``: csv / tensorboard / wandb)
and into the run folder (``<experiment.folder_name>/hetdps`` and ``/heterogeneity``).
"""
from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from benchmarl.experiment import Callback
from tensordict import TensorDict, TensorDictBase
from torch import Tensor

from hetero.cvae import CVAEConfig
from hetero.grouping import group as group_agents
from hetero.hetdps import HETDPS_QUANTIFY, HetDPS, HetDPSConfig
from marl_backends.trainers.report import describe_round
from hetero.plan import RegroupPlan
from hetero.quantify import QuantifyConfig, quantify
from hetero.samples import SamplePool
from marl_backends.benchmarl.model import GroupedMlp, grouped_models


# --- BenchMARL batch -> SamplePool ------------------------------------------------------------------
def pool_from_batch(batch: TensorDictBase, group: str, n_actions: int | None = None,
                    obs_key: str = "observation", local_state_dims: int | None = None) -> SamplePool:
    """A :class:`SamplePool` from a BenchMARL (TorchRL) batch of one agent group.

    Rows are all collected steps (envs x time flattened). Fields: ``obs``/``next_obs`` the group's
    observations, ``action`` (one-hot when discrete; ``n_actions`` from the action spec),
    ``reward`` the per-agent reward (the global one, broadcast, when the task has none per agent);
    as for VMAS built-ins, ``state`` is every agent's observation concatenated. BenchMARL tasks
    expose no per-agent physical state, so an agent's ``local_state`` is the first
    ``local_state_dims`` entries of its observation (VMAS scenarios start it with the agent's own
    position and velocity: 4 for PMS and most built-ins), or the whole observation when None.
    ``episode`` numbers each (env, episode) stream, so the model-free noise floor splits halves
    by episode. Where the task's VMAS scenario reports S^E as ``info["env_state"]`` (our PMS and
    spread scenarios do), the pool carries it as ``env_state`` (agent 0's copy), so Meta-Het can
    condition on it; otherwise the pool has none and a round says so in its log.
    """
    obs = batch.get((group, obs_key))
    n, do = obs.shape[-2], obs.shape[-1]
    lead = obs.shape[:-2]
    nxt = batch.get(("next", group, obs_key))
    act = batch.get((group, "action"))
    if not act.is_floating_point():
        if act.shape == obs.shape[:-1]:  # categorical index
            if n_actions is None:
                raise ValueError(f"discrete actions of group {group!r} need n_actions (the action spec's space.n).")
            act = torch.nn.functional.one_hot(act.long(), n_actions)
        act = act.float()
    rew = batch.get(("next", group, "reward"), None)
    if rew is None:  # a team reward [..., 1]: every agent gets it
        rew = batch.get(("next", "reward")).reshape(*lead, 1).expand(*lead, n)
    rew = rew.reshape(*lead, n)
    done = batch.get(("next", "done"), None)
    if done is None:
        done = batch.get(("next", group, "done")).any(-2)
    done = done.reshape(*lead).long()
    if len(lead) == 1:  # one env stream
        done, lead2 = done.unsqueeze(0), (1, lead[0])
    else:
        lead2 = (int(np.prod(lead[:-1])), lead[-1])
    d = done.reshape(lead2)
    ep_in_env = d.cumsum(1) - d  # a step that ends an episode still belongs to it
    episode = (torch.arange(lead2[0]).unsqueeze(1) * (lead2[1] + 1) + ep_in_env).reshape(-1)
    flat = lambda t: t.reshape(-1, n, t.shape[-1]).float().detach().cpu()  # noqa: E731
    o, o2 = flat(obs), flat(nxt)
    k = do if local_state_dims is None else int(local_state_dims)
    if not 1 <= k <= do:
        raise ValueError(f"local_state_dims={local_state_dims} must lie in 1..{do} (the observation size of {group!r}).")
    env, env2 = batch.get((group, "info", "env_state"), None), batch.get(("next", group, "info", "env_state"), None)
    if env is not None and env2 is not None:  # [*lead, N, De]: one copy per agent, all equal
        env, env2 = (v.select(-2, 0).reshape(-1, v.shape[-1]).float().detach().cpu() for v in (env, env2))
    else:
        env = env2 = None
    return SamplePool(state=o.flatten(1), next_state=o2.flatten(1), local_state=o[..., :k], obs=o, action=flat(act),
                      reward=rew.reshape(-1, n).float().detach().cpu(), next_local_state=o2[..., :k], next_obs=o2,
                      episode=episode.cpu(), env_state=env, next_env_state=env2)


def policy_distributions(experiment, group: str, obs: Tensor, obs_key: str = "observation") -> Tensor:  # noqa: ANN001
    """obs [B, N, Do] (agent i fed obs[:, i]) -> the group policy's parameters [B, N, Dy]:
    (loc, scale) of its Gaussian for continuous actions, probabilities for discrete ones."""
    actor = experiment.algorithm.get_policy_for_loss(group)
    net = actor.module[0]  # ProbabilisticActor: [param module, distribution module]
    td = TensorDict({group: TensorDict({obs_key: obs}, batch_size=obs.shape[:2])}, batch_size=obs.shape[:1])
    with torch.no_grad():
        out = net(td)
    if (group, "loc") in out.keys(True, True):
        return torch.cat([out.get((group, "loc")), out.get((group, "scale"))], -1)
    return torch.softmax(out.get((group, "logits")), -1)


def _n_actions(experiment, group: str) -> int | None:  # noqa: ANN001
    space = getattr(experiment.action_spec[group, "action"], "space", None)
    return int(space.n) if hasattr(space, "n") else None


def _resolve_group(experiment, group: str | None) -> str:  # noqa: ANN001
    groups = list(experiment.group_map)
    if group is None:
        if len(groups) != 1:
            raise ValueError(f"the task has agent groups {groups}; pass group=... to the callback.")
        return groups[0]
    if group not in groups:
        raise ValueError(f"agent group {group!r} is not in the task's groups {groups}.")
    return group


def _plain(v):  # noqa: ANN001, ANN202 - json fallback for numpy scalars / arrays in round records
    return v.tolist() if hasattr(v, "tolist") else str(v)


def _matrix_scalars(prefix: str, m: np.ndarray) -> dict[str, float]:
    n = m.shape[0]
    return {f"{prefix}/d_{i}_{j}": float(m[i, j]) for i in range(n) for j in range(i + 1, n)}


class _BatchCallback(Callback):
    """Keeps the last ``keep`` collected batches of one group as SamplePools (built lazily)."""

    def __init__(self, group: str | None, keep: int, local_state_dims: int | None) -> None:
        super().__init__()
        self.group_arg, self.keep, self.local_state_dims = group, keep, local_state_dims
        self._batches: list[TensorDictBase] = []
        self.seconds = 0.0  # wall time spent inside this callback (its overhead on training)

    def __getstate__(self) -> dict:  # BenchMARL pickles its callbacks with the config: keep only settings
        return {"group_arg": self.group_arg, "keep": self.keep, "local_state_dims": self.local_state_dims}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.experiment, self._batches, self.seconds = None, [], 0.0

    def on_setup(self) -> None:
        self.group = _resolve_group(self.experiment, self.group_arg)
        self._n_actions = _n_actions(self.experiment, self.group)

    def on_batch_collected(self, batch: TensorDictBase) -> None:
        self._batches = (self._batches + [batch])[-self.keep:]

    def latest_pool(self, k: int = 1) -> SamplePool:
        if not self._batches:
            raise RuntimeError("no batch collected yet.")
        pools = [pool_from_batch(b, self.group, self._n_actions, local_state_dims=self.local_state_dims)
                 for b in self._batches[-k:]]
        return pools[0] if len(pools) == 1 else SamplePool.concat(pools)

    @property
    def iteration(self) -> int:
        """Iterations finished once the current one's update is done (BenchMARL counts from 0)."""
        return self.experiment.n_iters_performed + 1

    @property
    def out_dir(self) -> Path:
        return Path(self.experiment.folder_name)


# --- HetDPS ----------------------------------------------------------------------------------------
class BenchmarlSharing:
    """:class:`hetero.SharingTrainer` over one agent group of a BenchMARL experiment whose policy is
    a :class:`GroupedMlp`: the layout is the model's, ``apply_plan`` regroups it in place together
    with BenchMARL's optimisers of that group (``experiment.optimizers[group]``)."""

    def __init__(self, experiment, group: str, pool_fn) -> None:  # noqa: ANN001
        self.experiment, self.group, self._pool_fn = experiment, group, pool_fn
        self.models: list[GroupedMlp] = grouped_models(experiment.algorithm.get_policy_for_loss(group))
        if not self.models:
            raise ValueError(
                f"HetDPSCallback: the policy of group {group!r} has no GroupedMlp; build the Experiment with "
                "model_config=GroupedMlpConfig(...) (marl_backends.benchmarl) so its layout can change.")
        self.plans: list[dict] = []

    @property
    def layout(self) -> tuple[int, ...]:
        return self.models[0].layout_tuple

    def sample_pool(self) -> SamplePool:
        return self._pool_fn()

    def policy_distributions(self, obs: Tensor) -> Tensor:
        return policy_distributions(self.experiment, self.group, obs)

    def apply_plan(self, plan: RegroupPlan) -> None:
        for m in self.models:
            m.regroup_(plan, self.experiment.optimizers[self.group].values())
        self.plans.append({"iteration": self.experiment.n_iters_performed + 1, **plan.to_dict()})


# kl_weight 0.05: the setting case_studies/results/benchmarl was measured with (quantify moved to 0.01)
DEFAULT_ROUND = replace(HETDPS_QUANTIFY, cvae=CVAEConfig(epochs=10, kl_weight=0.05))


class HetDPSCallback(_BatchCallback):
    """HetDPS inside BenchMARL: a regrouping round every ``interval`` iterations (paper Alg. 1).

    Args:
        interval: BenchMARL iterations (collected batches) between rounds.
        group: BenchMARL agent group to regroup (default: the task's only group).
        config: :class:`hetero.HetDPSConfig` (kind, merge mode, pool_rollouts = batches pooled
            per round, no_structure, quantify settings, seed); ``interval`` overrides its own.
        local_state_dims: leading observation entries that form an agent's own local state s_i
            (see :func:`pool_from_batch`; 4 = position and velocity for PMS and VMAS built-ins).
        plots: save a heatmap of each round's matrix (ordered by the groups found).
        **overrides: fields of ``config``, e.g. ``kind="policy"``, ``merge="weighted"``.

    The experiment's ``model_config`` must be a :class:`GroupedMlpConfig` (its ``init_layout``
    is the first layout). Logged each iteration: ``hetdps/n_groups``; each round:
    ``hetdps/round_s``, ``hetdps/changed``, ``hetdps/noise_floor``, ``hetdps/agent_<i>`` (group of
    agent i) and ``hetdps/d_<i>_<j>`` (the matrix). Files: ``hetdps/hetdps_rounds.jsonl``,
    ``hetdps/hetdps_round_<it>.npz`` (+ ``.png``).
    """

    def __init__(self, interval: int = 10, group: str | None = None, config: HetDPSConfig | None = None,
                 local_state_dims: int | None = None, plots: bool = True, **overrides) -> None:  # noqa: ANN003
        cfg = replace(config or HetDPSConfig(quantify=DEFAULT_ROUND), interval=interval, **overrides)
        super().__init__(group, cfg.pool_rollouts, local_state_dims)
        self.cfg, self.plots = cfg, plots
        self.hetdps: HetDPS | None = None

    def __getstate__(self) -> dict:
        return {**super().__getstate__(), "cfg": self.cfg, "plots": self.plots}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.experiment, self._batches, self.hetdps, self.seconds = None, [], None, 0.0

    def on_setup(self) -> None:
        super().on_setup()
        self.trainer = BenchmarlSharing(self.experiment, self.group, lambda: self.latest_pool(1))
        self.hetdps = HetDPS(self.trainer, self.cfg, log_dir=self.out_dir / "hetdps")

    def on_train_end(self, training_td: TensorDictBase, group: str) -> None:
        if group != self.group:
            return
        t0 = time.perf_counter()
        it, step = self.iteration, self.experiment.n_iters_performed
        old = tuple(self.trainer.layout)
        rnd = self.hetdps.after_update(it, last=self.last_iteration())
        log = {"hetdps/n_groups": len(set(self.trainer.layout))}
        if rnd is not None:
            print(describe_round(rnd, old), flush=True)  # one line per round, as our trainers print
            log.update({"hetdps/round_s": rnd.seconds, "hetdps/noise_floor": rnd.noise_floor,
                        "hetdps/changed": float(rnd.plan["layout"] != rnd.plan["old_layout"]
                                                or any(a != "keep" for a in rnd.plan["actions"]))})
            log.update({f"hetdps/agent_{i}": float(g) for i, g in enumerate(rnd.labels)})
            if rnd.matrix is not None:
                log.update(_matrix_scalars("hetdps", rnd.matrix))
                if self.plots:
                    from hetero.plotting import heatmap
                    heatmap(rnd.matrix, rnd.labels, f"{self.cfg.kind} at iteration {it}: groups {list(rnd.labels)}",
                            self.out_dir / "hetdps" / f"hetdps_round_{it:07d}", formats=("png",))
        self.experiment.logger.log(log, step=step)
        self.seconds += time.perf_counter() - t0

    def last_iteration(self) -> int | None:
        """The experiment's final iteration (no round there), when its config bounds the run."""
        cfg = self.experiment.config
        frames, per = getattr(cfg, "max_n_frames", None), getattr(cfg, "collected_frames_per_batch", None)
        iters = getattr(cfg, "max_n_iters", None)
        if frames and callable(per):
            per = per(self.experiment.on_policy)
            return -(-int(frames) // int(per)) if per else iters
        return iters

    def on_state_dict(self, state_dict: dict) -> None:
        # plain types and tensors only: BenchMARL restores with torch.load (weights_only by default)
        state = self.hetdps.state_dict()
        for key in ("config", "history"):
            state[key] = json.loads(json.dumps(state[key], default=_plain))
        state_dict["hetdps"] = state

    def on_load_state_dict(self, state_dict: dict) -> None:
        if "hetdps" in state_dict:
            self.hetdps.load_state_dict(state_dict["hetdps"])
            self.hetdps.attach_log(self.out_dir / "hetdps")


# --- measurement only ------------------------------------------------------------------------------
class HeterogeneityMonitor(_BatchCallback):
    """Measure heterogeneity over training without changing anything (any BenchMARL policy).

    Every ``interval`` iterations (and after the last one) it quantifies each of ``kinds`` on the
    last ``pool_batches`` collected batches -- ``meta`` (model-free Meta-Het, App. G) and/or
    ``policy`` (Policy-Het: every agent's policy on the same observations, Eq. 16) -- and logs
    ``heterogeneity/<kind>/{mean,noise_floor,n_groups,d_<i>_<j>}`` through BenchMARL's loggers.
    In ``<run folder>/heterogeneity`` it writes ``<kind>_<it>.npz`` and ``.png`` per measurement,
    ``measurements.jsonl``, and at the end ``<kind>_evolution.png`` (up to 4 matrices over
    training). ``history`` holds (iteration, kind, matrix, labels, noise floor).
    """

    def __init__(self, interval: int = 10, kinds: Sequence[str] = ("meta", "policy"), group: str | None = None,
                 quantify_config: QuantifyConfig = DEFAULT_ROUND, pool_batches: int = 1,
                 local_state_dims: int | None = None, plots: bool = True, seed: int = 0) -> None:
        super().__init__(group, pool_batches, local_state_dims)
        if interval < 1:
            raise ValueError(f"HeterogeneityMonitor interval={interval}; it must be >= 1 iteration.")
        self.interval, self.kinds, self.qcfg = interval, tuple(kinds), quantify_config
        self.pool_batches, self.plots, self.seed = pool_batches, plots, seed
        self.history: list[dict] = []

    def __getstate__(self) -> dict:
        return {**super().__getstate__(), **{k: getattr(self, k) for k in ("interval", "kinds", "qcfg",
                                                                              "pool_batches", "plots", "seed")}}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.experiment, self._batches, self.history, self.seconds = None, [], [], 0.0

    def on_train_end(self, training_td: TensorDictBase, group: str) -> None:
        if group != self.group:
            return
        it = self.iteration
        last = it == self.experiment.config.get_max_n_iters(self.experiment.on_policy)
        if it % self.interval and not last:
            return
        t_start = time.perf_counter()
        pool = self.latest_pool(self.pool_batches)
        log: dict[str, float] = {}
        out = self.out_dir / "heterogeneity"
        out.mkdir(parents=True, exist_ok=True)
        for kind in self.kinds:
            t0 = time.perf_counter()
            cfg = replace(self.qcfg, seed=self.seed + len(self.history))
            fn = (lambda o: policy_distributions(self.experiment, self.group, o)) if kind == "policy" else None
            res = quantify(pool, kind, cfg, policy_fn=fn)
            labels = group_agents(res, seed=cfg.seed).labels
            rec = {"iteration": it, "frames": self.experiment.total_frames, "kind": kind, "mode": res.mode,
                   "labels": list(labels), "noise_floor": float(res.noise_floor), "p_value": res.p_value,
                   "seconds": time.perf_counter() - t0}
            self.history.append({**rec, "matrix": res.matrix})
            n = res.matrix.shape[0]
            off = res.matrix[~np.eye(n, dtype=bool)]
            log.update({f"heterogeneity/{kind}/mean": float(off.mean()), f"heterogeneity/{kind}/n_groups": len(set(labels)),
                        f"heterogeneity/{kind}/noise_floor": float(res.noise_floor),
                        f"heterogeneity/{kind}/seconds": rec["seconds"]})
            log.update(_matrix_scalars(f"heterogeneity/{kind}", res.matrix))
            np.savez(out / f"{kind}_{it:07d}.npz", matrix=res.matrix, stderr=res.stderr, labels=np.asarray(labels),
                     noise_floor=res.noise_floor)
            with open(out / "measurements.jsonl", "a") as f:
                f.write(json.dumps(rec) + "\n")
            if self.plots:
                from hetero.plotting import heatmap
                heatmap(res.matrix, labels, f"{kind} at iteration {it}: groups {list(labels)}",
                        out / f"{kind}_{it:07d}", formats=("png",))
        self.experiment.logger.log(log, step=self.experiment.n_iters_performed)
        if last and self.plots:
            self._evolution(out)
        self.seconds += time.perf_counter() - t_start

    def _evolution(self, out: Path) -> None:
        from hetero.plotting import evenly, matrix_panels
        for kind in self.kinds:
            recs = [h for h in self.history if h["kind"] == kind]
            if recs:
                panels = [(f"it {h['iteration']}", h["matrix"], h["labels"]) for h in evenly(recs, 4)]
                matrix_panels(panels, out / f"{kind}_evolution", formats=("png",))
