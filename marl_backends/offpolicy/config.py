"""Configs of the off-policy trainers (MATD3, OMDPG and the paper's Fig. 6 ablation in between).

Defaults follow HARL App. K (Table 5 common off-policy values, Tables 15-16 MATD3 on MaMuJoCo:
hidden [256, 256], actor lr 5e-4, critic lr 1e-3, gamma 0.99, exploration noise 0.1, policy
noise 0.2, noise clip 0.5, polyak 0.005, batch 1000, warmup 1e4, train interval 50, HalfCheetah
2x3: policy delay 2, n-step 10) and OMDPG Tables 3-4 (C_k = 5, lambda_PU = 0.1).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal


@dataclass(frozen=True)
class OffPolicyConfig:
    """One off-policy run. ``matd3()`` and ``omdpg()`` are the two presets.

    Attributes:
        algo: label written to the run folder ("matd3", "omdpg", "matd3-gqc", ...).
        env: registry name of the env the run trains on (a label set by the CLI, "" when the
            trainer was built directly; ``load_offpolicy_trainer`` callers compare it with --env).
        n_critics: C_k, critics in the centralised ensemble (MATD3: the twin critics, 2).
        independent_minibatches: each critic draws its own minibatch (OMDPG Eqs. 9-10), else all
            critics share one (TD3).
        target: "own" = critic c bootstraps from its own target network (Eq. 9); "min" = from the
            min over all target critics (TD3's clipped double Q).
        pu_coef: lambda_PU of Eq. 14; 0 turns the pessimistic-uncertainty loss off.
        beta: weight of the ensemble std in the PU target (Eq. 12). The paper does not state it.
        pu_anchor: what the PU target y^PU = Q_anchor(s, a_ood) - beta * U anchors Q at the OOD
            joint actions to: "online" (default) = the critic itself, detached (stopgrad(Q_c), as
            in PBRL), so the PU loss only pushes Q down by beta * U; "target" = the target critic
            Q^tgt_c, Eq. 12 as printed, which also pulls Q towards the slow target network (~100x
            the pessimism on spread_v4 and an optimistic critic; see the off-policy README).
        pu_batch: "shared" = the PU loss (Eqs. 12-13) of every critic uses the OOD joint actions
            of one shared minibatch, so the ensemble std (Eq. 8) is one forward pass (C x B
            rows); "own" = each critic's own minibatch, which needs every critic on every
            minibatch for the std (C^2 x B rows, ~2x the update time at C_k=5).
        pu_prefix_min: the PU joint actions (a_{1:i}, a^g_{i+1:n}) draw i ~ U{pu_prefix_min..n-1}:
            1 = Eq. 12's OOD actions (at least one sampled action); 0 also trains the fully greedy
            joint action (the case-study numbers in the first report were made with 0).
        actor_loss: "omq" = Eq. 15 (min over critics of the OMQ marginal contribution with the
            zero-action baseline); "joint" = MATD3's -Q_1(s, mu(o)).
        omq_min: where Eq. 15 takes the min over critics: "terms" = min_c Q_c(a_i) - min_c Q_c(0)
            (default; the baseline carries no gradient), "difference" = min_c (Q_c(a_i) - Q_c(0))
            as typeset, which makes the zero action an attractor when critics disagree (see
            ``omq.omq_actor_loss``).
        omq_prefix: the actions a_{1:i-1} of the agents before i in the OMQ actor loss (Eq. 15,
            "a ~ pi"): "policy" (default) = the current policies' greedy actions mu_j(o_j), as
            HATD3; "buffer" = the replay buffer's actions (warm-up noise included).
        shuffle_order: draw a random agent order per update (HARL's sequential scheme); False =
            agent index order 1..n as written in the paper.
        gamma: discount factor.
        n_step: n-step return length (stops early at episode ends and at the newest stored step).
        buffer_size: replay capacity in transitions (envs x steps).
        batch_size: transitions per minibatch (per critic when independent).
        hidden: hidden sizes of actors and critics.
        actor_lr: Adam step size of the actors.
        critic_lr: Adam step size of the critics.
        polyak: tau of the soft target update.
        expl_noise: std of the Gaussian exploration noise (actions scaled to [-1, 1]); for discrete
            actions it is the epsilon of epsilon-greedy exploration (a uniformly random available
            action with this probability, else the greedy one).
        policy_noise: std of the target policy smoothing noise (the truncated Gaussian epsilon of Eq. 9);
            continuous actions only (discrete target actions are the one-hot argmax, unsmoothed).
        noise_clip: the smoothing noise is clipped to [-noise_clip, noise_clip].
        lr_schedule: constant | linear: linear decays both learning rates to 0 over the run's
            env steps (HARL use_linear_lr_decay); the horizon is the ``total_steps`` given to
            ``OffPolicyTrainer.train`` (the CLI: --frames).
        policy_delay: critic updates per actor / target update.
        discrete_tau: discrete actions only: temperature of the straight-through softmax whose
            gradient the one-hot argmax action carries in the actor loss (onehot + p - p.detach(),
            p = softmax(masked logits / tau)); lower = closer to the argmax, higher variance.
        warmup_steps: transitions of uniformly random (available) actions before learning starts.
        train_interval: vectorised env steps between two bursts of updates.
        updates_per_step: gradient updates per vectorised env step (so a burst has
            round(train_interval * updates_per_step) updates).
        pool_size: rows returned by ``sample_pool()`` (most recent transitions).
        seed: seeds initialisation, exploration, sampling and the env.
        device: torch device of networks and buffer.
    """

    algo: str = "omdpg"
    env: str = ""
    n_critics: int = 5
    independent_minibatches: bool = True
    target: Literal["own", "min"] = "own"
    pu_coef: float = 0.1
    beta: float = 0.1
    pu_batch: Literal["shared", "own"] = "shared"
    pu_anchor: str = "online"
    pu_prefix_min: int = 1
    actor_loss: Literal["omq", "joint"] = "omq"
    omq_min: Literal["terms", "difference"] = "terms"
    omq_prefix: str = "policy"
    shuffle_order: bool = True
    gamma: float = 0.99
    n_step: int = 10
    buffer_size: int = 1_000_000
    batch_size: int = 1000
    hidden: tuple[int, ...] = (256, 256)
    actor_lr: float = 5e-4
    critic_lr: float = 1e-3
    polyak: float = 0.005
    expl_noise: float = 0.1
    policy_noise: float = 0.2
    noise_clip: float = 0.5
    lr_schedule: str = "constant"
    policy_delay: int = 2
    discrete_tau: float = 1.0
    warmup_steps: int = 10_000
    train_interval: int = 50
    updates_per_step: float = 1.0
    pool_size: int = 10_000
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.n_critics < 1:
            raise ValueError(f"n_critics={self.n_critics}; need at least 1 critic (MATD3: 2, OMDPG: C_k=5).")
        if self.target not in ("own", "min"):
            raise ValueError(f"target={self.target!r}; choose 'own' (Eq. 9) or 'min' (clipped double Q).")
        if self.pu_batch not in ("shared", "own"):
            raise ValueError(f"pu_batch={self.pu_batch!r}; choose 'shared' or 'own'.")
        if self.pu_anchor not in ("online", "target"):
            raise ValueError(f"pu_anchor={self.pu_anchor!r}; choose 'online' (detached online critic, default) "
                             "or 'target' (Eq. 12 as printed).")
        if self.omq_prefix not in ("policy", "buffer"):
            raise ValueError(f"omq_prefix={self.omq_prefix!r}; choose 'policy' (current policies, HATD3) or 'buffer'.")
        if self.lr_schedule not in ("constant", "linear"):
            raise ValueError(f"lr_schedule={self.lr_schedule!r}; choose 'constant' or 'linear'.")
        if self.pu_prefix_min not in (0, 1):
            raise ValueError(f"pu_prefix_min={self.pu_prefix_min}; choose 1 (Eq. 12) or 0 (also the all-greedy action).")
        if self.omq_min not in ("terms", "difference"):
            raise ValueError(f"omq_min={self.omq_min!r}; choose 'terms' or 'difference' (see omq.omq_actor_loss).")
        if self.actor_loss not in ("omq", "joint"):
            raise ValueError(f"actor_loss={self.actor_loss!r}; choose 'omq' (Eq. 15) or 'joint' (MATD3).")
        if self.pu_coef > 0 and self.n_critics < 2:
            raise ValueError(f"pu_coef={self.pu_coef} needs n_critics >= 2 (the PU term is the ensemble std, Eq. 8).")
        if not self.discrete_tau > 0:
            raise ValueError(f"discrete_tau={self.discrete_tau}; the softmax temperature must be > 0 (default 1.0).")
        if not self.expl_noise >= 0:
            raise ValueError(f"expl_noise={self.expl_noise}; must be >= 0 (discrete actions: an epsilon in [0, 1]).")
        for name in ("batch_size", "policy_delay", "train_interval", "n_step"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)}; must be >= 1.")
        from hetero.errors import check_number

        for name, bounds in NUMBER_RANGES.items():  # the flag is --name-with-dashes (actor_lr: --lr)
            check_number(getattr(self, name), "--" + {"actor_lr": "lr"}.get(name, name).replace("_", "-"), **bounds)
        if not self.hidden or any(h < 1 for h in self.hidden):
            raise ValueError(f"--hidden must list positive layer sizes, e.g. 256,256 (got {self.hidden}).")

    def with_(self, **kw) -> "OffPolicyConfig":
        return replace(self, **kw)


NUMBER_RANGES: dict[str, dict] = {
    "beta": {"ge": 0}, "pu_coef": {"ge": 0}, "gamma": {"gt": 0, "le": 1}, "buffer_size": {"ge": 1},
    "actor_lr": {"gt": 0}, "critic_lr": {"gt": 0}, "polyak": {"gt": 0, "le": 1}, "policy_noise": {"ge": 0},
    "noise_clip": {"ge": 0}, "warmup_steps": {"ge": 0}, "updates_per_step": {"gt": 0}, "pool_size": {"ge": 1},
    "seed": {"ge": 0},
}
"""Range of the numeric :class:`OffPolicyConfig` fields not checked above (the error names the flag)."""


def matd3(**kw) -> OffPolicyConfig:
    """MATD3: twin critics on one minibatch, clipped double-Q target, actor maximises Q_1."""
    base = dict(algo="matd3", n_critics=2, independent_minibatches=False, target="min", pu_coef=0.0, actor_loss="joint")
    return OffPolicyConfig(**{**base, **kw})


def omdpg(**kw) -> OffPolicyConfig:
    """OMDPG: C_k=5 critics with own minibatches and targets, PU loss (lambda 0.1), OMQ actor loss."""
    return OffPolicyConfig(**{"algo": "omdpg", **kw})


ABLATION = {
    # paper Fig. 6: MATD3-NoPS / -ParPS use matd3(); +GQC uses 5 GQC critics; +OMQ uses 2.
    "matd3": matd3,
    "matd3-gqc": lambda **kw: omdpg(**{"algo": "matd3-gqc", "actor_loss": "joint", **kw}),
    "matd3-omq": lambda **kw: omdpg(**{"algo": "matd3-omq", "n_critics": 2, **kw}),
    "omdpg": omdpg,
}
