"""TrainConfig: every knob of the on-policy trainers; CLI flags map onto its fields 1:1.

Defaults follow HARL App. K: Table 4 (common on-policy: ReLU, feature normalisation, orthogonal
init with gain 0.01 on the actor head, value normalisation, proper time limits, clipped Huber
value loss with delta 10, max grad norm 10, GAE lambda 0.95, Adam eps 1e-5, std coefs 1 / 0.5)
and Table 6 (MPE: batch 4000, hidden [128, 128], lr 5e-4, 5 PPO / critic epochs, 1 minibatch,
clip 0.2, entropy 0.01, gamma 0.99).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

from marl_backends.nets.layout import SHARING_HELP

ALGOS = ("mappo", "happo", "hamdpo")
GROUPERS = ("hetdps", "seps", "madps")


@dataclass(frozen=True)
class TrainConfig:
    """Configuration of one training run.

    Attributes:
        env: registry name of the env (`hetero envs` lists them), e.g. pms_15a_3c, spread_v0, vmas_balance.
        env_args: extra scenario arguments for the env, comma-separated key=value (ints, floats, true/false, else strings), e.g. n_agents=4 for a VMAS built-in (VMAS's balance defaults to 3 agents; BenchMARL's balance task uses 4).
        algo: on-policy mappo | happo | hamdpo; off-policy matd3 | omdpg | matd3-gqc | matd3-omq (their flags: the off-policy group).
        sharing: parameter sharing; empty = algo default (mappo: fps, happo/hamdpo: nps); hetdps = regroup online (HetDPS, paper Sec. 5, Alg. 1) starting from --hetdps-init (also written hetdps:nps, hetdps:groups:0,0,1,...).
        hetdps_init: initial layout of --sharing hetdps: fps | nps | fps-id | groups:... .
        hetdps_kind: heterogeneity kind that drives HetDPS: meta | policy | obs | response | effect | objective.
        hetdps_interval: trainer updates (iterations) between two regrouping rounds. Off-policy algos (omdpg, matd3, matd3-gqc, matd3-omq) count iterations of train_interval env steps + their update burst and default to 400 instead (200k env steps at 10 envs x 50 steps, the frame cadence of the on-policy 50 x 4000).
        hetdps_rollouts: the heterogeneity sample pool holds this many latest rollouts (Alg. 1 line 5), gathered just before each round. Off-policy algos gather snapshots of the replay buffer's last --pool-size transitions in the iterations just before a round and default to 1 instead (one snapshot already spans many iterations; more would mostly repeat rows).
        hetdps_samples: conditions x each round's CVAE trains on (it averages distances over half as many).
        hetdps_no_structure: a model-free round that finds nothing beyond its noise floor: keep (leave the layout; default) | merge (one group).
        merge: how merged networks combine their parameters: majority (copy the network holding most of the merged agents; default) | random | average | weighted. Averaging independently trained networks (e.g. NPS agents merged into a colour) destroys them: on pms_30a_5c return fell from -81 to -112 for ~5 updates with weighted, majority had no dip.
        grouper: who regroups under --sharing hetdps: hetdps (heterogeneity + Affinity Propagation) | seps (SePS: VAE agent embedding + k-means with fixed --seps-k, once) | madps (MADPS: policy distance with --madps-fusion / --madps-division thresholds).
        seps_k: SePS number of groups k (required with --grouper seps).
        seps_samples: SePS: transitions per agent the embedding VAE trains on.
        madps_fusion: MADPS fusion threshold: groups whose mean policy distance is below it merge (default tuned on pms_15a_3c, where Policy-Het gives ~1.4 within and ~2.5 between colours after 120k frames; retune per task).
        madps_division: MADPS division threshold: a group whose largest policy distance exceeds it splits in two.
        seed: seed for networks, sampling and env resets (same seed, same numbers on CPU).
        frames: total env steps to train for (summed over parallel envs).
        num_envs: parallel envs per rollout (HARL n_rollout_threads).
        rollout_steps: steps per env per iteration; the batch is num_envs * rollout_steps (HARL MPE: 4000 = 20 x 200). The envs run on across iterations (a rollout continues where the last one stopped), so episodes longer than a rollout are seen whole.
        continuous: continuous actions instead of discrete ones (VMAS envs).
        hidden: hidden layer sizes of actor and critic, comma-separated.
        activation: hidden activation (relu | tanh | elu | gelu).
        feature_norm: LayerNorm on network inputs.
        layer_norm: LayerNorm after every hidden layer.
        lr: actor learning rate.
        critic_lr: critic learning rate.
        lr_schedule: constant | linear: linear decays actor and critic learning rates to 0 over the run's iterations (HARL use_linear_lr_decay; the horizon is --frames).
        adam_eps: Adam epsilon.
        ppo_epochs: passes over the batch per actor update (HAMDPO: SGD passes on the mirror-descent objective).
        num_minibatches: actor minibatches per pass.
        critic_epochs: passes over the batch per critic update.
        critic_minibatches: critic minibatches per pass.
        clip: PPO ratio clip epsilon.
        entropy_coef: entropy bonus weight.
        gamma: discount.
        gae_lambda: GAE lambda.
        max_grad_norm: per-group gradient-norm clip (0 disables).
        value_loss_coef: weight of the value loss.
        huber_delta: Huber delta of the value loss (0 = squared error).
        clipped_value_loss: clip value predictions around the old ones like the ratio.
        value_norm: normalise value targets with running statistics.
        normalize_advantages: standardise advantages over the batch.
        actor_gain: orthogonal-init gain of the actor's output layer.
        std_x_coef: Gaussian std parameterisation x coefficient (continuous actions).
        std_y_coef: Gaussian std parameterisation y coefficient (continuous actions).
        reward: agent (a value head and advantage per agent's reward) | team (mean reward, one V(s)) | auto (mappo: agent, happo/hamdpo: team, the joint advantage of HARL).
        happo_shared: how HAPPO/HAMDPO update agents that share parameters: group (sequential over groups, each group one unit, exact) | fpb (sequential over agents, fixed pre-update baseline, OMDPG Sec. 3.3) | naive (sequential over agents, drifting baseline; for ablations).
        mdpo_kl_coef: HAMDPO weight of KL(pi_new || pi_old).
        mdpo_kl_anneal: HAMDPO: divide the KL weight by the remaining fraction of training (MDPO step size t_k = 1 - k/K, floored at 0.1).
        eval_interval: evaluate every this many iterations (0 = only at the end).
        eval_episodes: deterministic evaluation episodes (run in parallel).
        checkpoint_interval: write the checkpoint every this many iterations (and at the end).
        out_dir: parent folder of run folders.
        run_name: run folder name (empty = ENV_ALGO_SHARING_sSEED_TIMESTAMP).
        device: torch device (cpu, cuda).
        threads: torch CPU threads (as `hetero quantify`: 1, since these networks are small and more threads only pay off on an idle many-core machine; 0 = torch's default, all cores).
        progress: show a progress bar when stderr is a terminal.
        log_interval: print a text line (iteration, frames, return, eval, fps, layout) every this many iterations whenever stdout is not a terminal or the bar is off (0 = no lines; HetDPS rounds always get a line).
        tensorboard: also write TensorBoard events (RUN/tb; grouped tags such as train/return, eval/return, hetdps/groups, indexed by env frames); needs the tensorboard extra, a warning says when it is missing.
        wandb: also log to Weights & Biases (same tags, step = frames); needs the wandb extra; WANDB_MODE=offline logs without an account.
        wandb_project: the Weights & Biases project of --wandb runs.
    """

    env: str = "pms_15a_3c"
    env_args: str = ""
    algo: str = "mappo"
    sharing: str = ""
    hetdps_init: str = "fps"
    hetdps_kind: str = "meta"
    hetdps_interval: int = 50
    hetdps_rollouts: int = 4
    hetdps_samples: int = 1000
    hetdps_no_structure: str = "keep"
    merge: str = "majority"
    grouper: str = "hetdps"
    seps_k: int = 0
    seps_samples: int = 2000
    madps_fusion: float = 2.0
    madps_division: float = 3.0
    seed: int = 0
    frames: int = 1_000_000
    num_envs: int = 20
    rollout_steps: int = 200
    continuous: bool = False
    hidden: tuple[int, ...] = (128, 128)
    activation: str = "relu"
    feature_norm: bool = True
    layer_norm: bool = True
    lr: float = 5e-4
    critic_lr: float = 5e-4
    lr_schedule: str = "constant"
    adam_eps: float = 1e-5
    ppo_epochs: int = 5
    num_minibatches: int = 1
    critic_epochs: int = 5
    critic_minibatches: int = 1
    clip: float = 0.2
    entropy_coef: float = 0.01
    gamma: float = 0.99
    gae_lambda: float = 0.95
    max_grad_norm: float = 10.0
    value_loss_coef: float = 1.0
    huber_delta: float = 10.0
    clipped_value_loss: bool = True
    value_norm: bool = True
    normalize_advantages: bool = True
    actor_gain: float = 0.01
    std_x_coef: float = 1.0
    std_y_coef: float = 0.5
    reward: str = "auto"
    happo_shared: str = "group"
    mdpo_kl_coef: float = 1.0
    mdpo_kl_anneal: bool = True
    eval_interval: int = 25
    eval_episodes: int = 10
    checkpoint_interval: int = 25
    out_dir: str = "runs"
    run_name: str = ""
    device: str = "cpu"
    threads: int = 1
    progress: bool = True
    log_interval: int = 10
    tensorboard: bool = True
    wandb: bool = False
    wandb_project: str = "hetero"

    def __post_init__(self) -> None:
        if self.algo not in ALGOS:
            raise ValueError(f"unknown --algo {self.algo!r}; expected one of {', '.join(ALGOS)}.")
        if self.reward not in ("auto", "agent", "team"):
            raise ValueError(f"unknown --reward {self.reward!r}; expected auto | agent | team.")
        if self.lr_schedule not in ("constant", "linear"):
            raise ValueError(f"unknown --lr-schedule {self.lr_schedule!r}; expected constant | linear.")
        if self.happo_shared not in ("group", "fpb", "naive"):
            raise ValueError(f"unknown --happo-shared {self.happo_shared!r}; expected group | fpb | naive.")
        for name in ("num_envs", "rollout_steps", "ppo_epochs", "num_minibatches", "critic_epochs",
                     "critic_minibatches", "eval_episodes", "frames"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1 (got {getattr(self, name)}).")
        self._check_hetdps()
        if not self.hidden or any(h < 1 for h in self.hidden):
            raise ValueError(f"--hidden must list positive layer sizes, e.g. 128,128 (got {self.hidden}).")
        self._check_numbers()
        if self.num_minibatches > self.num_envs * self.rollout_steps:
            raise ValueError("--num-minibatches exceeds the batch size num_envs * rollout_steps; lower it.")

    def _check_hetdps(self) -> None:
        check_hetdps(self)

    def _check_numbers(self) -> None:
        """Every numeric field finite and in range; the error names the flag (``--lr -1`` must not train)."""
        from hetero.errors import check_number

        for name, bounds in NUMBER_RANGES.items():
            check_number(getattr(self, name), "--" + name.replace("_", "-"), **bounds)

    @property
    def dynamic_sharing(self) -> bool:
        """True for --sharing hetdps (any initial layout): a grouper regroups online."""
        return is_dynamic_sharing(self.sharing)

    # --- resolved defaults -------------------------------------------------------------------
    @property
    def sharing_resolved(self) -> str:
        if self.dynamic_sharing:
            return resolve_dynamic_sharing(self.sharing, self.hetdps_init)
        return self.sharing or ("fps" if self.algo == "mappo" else "nps")

    @property
    def reward_resolved(self) -> str:
        if self.reward != "auto":
            return self.reward
        return "agent" if self.algo == "mappo" else "team"

    @property
    def batch_frames(self) -> int:
        return self.num_envs * self.rollout_steps

    @property
    def iterations(self) -> int:
        return -(-self.frames // self.batch_frames)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return d

    @staticmethod
    def from_dict(d: dict) -> "TrainConfig":
        names = {f.name for f in fields(TrainConfig)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"config has unknown fields {unknown}; was it written by a newer version?")
        d = dict(d)
        if "hidden" in d:
            d["hidden"] = tuple(d["hidden"])
        return TrainConfig(**d)

    def replace(self, **kw) -> "TrainConfig":  # noqa: ANN003
        return replace(self, **kw)


SHARING_DOC = SHARING_HELP

NUMBER_RANGES: dict[str, dict] = {
    "lr": {"ge": 0}, "critic_lr": {"ge": 0}, "adam_eps": {"gt": 0}, "clip": {"gt": 0}, "entropy_coef": {"ge": 0},
    "gamma": {"gt": 0, "le": 1}, "gae_lambda": {"ge": 0, "le": 1}, "max_grad_norm": {"ge": 0},
    "value_loss_coef": {"ge": 0}, "huber_delta": {"ge": 0}, "actor_gain": {"gt": 0}, "std_x_coef": {"gt": 0},
    "std_y_coef": {"gt": 0}, "mdpo_kl_coef": {"ge": 0}, "eval_interval": {"ge": 0}, "checkpoint_interval": {"ge": 0},
    "threads": {"ge": 0}, "log_interval": {"ge": 0}, "seps_k": {"ge": 0}, "madps_fusion": {"ge": 0},
    "madps_division": {"gt": 0}, "seed": {"ge": 0},
}
"""Range of every numeric :class:`TrainConfig` field not already checked as a count (``>= 1``)."""

ALGO_ONLY: dict[str, tuple[str, ...]] = {"happo_shared": ("happo", "hamdpo"), "mdpo_kl_coef": ("hamdpo",),
                                         "mdpo_kl_anneal": ("hamdpo",)}
"""Fields that only some on-policy algos read; the CLI refuses them for the others."""

RESUME_OVERRIDABLE = ("frames", "eval_interval", "eval_episodes", "checkpoint_interval", "progress", "threads",
                      "device", "tensorboard", "log_interval", "wandb", "wandb_project")
"""Flags ``hetero train --resume`` accepts: they do not change the experiment."""

# --- HetDPS settings, shared with the off-policy CLI (marl_backends/offpolicy/cli.py) ---------
HETDPS_FIELDS = ("hetdps_init", "hetdps_kind", "hetdps_interval", "hetdps_rollouts", "hetdps_samples",
                 "hetdps_no_structure", "merge", "grouper", "seps_k", "seps_samples", "madps_fusion",
                 "madps_division")
"""The :class:`TrainConfig` fields that configure ``--sharing hetdps`` (the controller and its grouper)."""


def is_dynamic_sharing(sharing: str) -> bool:
    """True for ``hetdps`` / ``hetdps:INIT``: a grouper regroups the layout online."""
    return sharing.strip().lower().startswith("hetdps")


def resolve_dynamic_sharing(sharing: str, init: str) -> str:
    """``hetdps`` -> ``hetdps:INIT`` (``init`` = --hetdps-init); ``hetdps:X`` stays as given."""
    return f"hetdps:{init}" if sharing.strip().lower() == "hetdps" else sharing


def check_hetdps(cfg) -> None:  # noqa: ANN001
    """Validate the HetDPS settings of any config with ``sharing`` and the :data:`HETDPS_FIELDS`
    attributes (a :class:`TrainConfig`, or the off-policy CLI's view); errors name the flag."""
    from hetero.grouping import MERGE_MODES
    from hetero.kinds import KINDS

    if cfg.merge not in MERGE_MODES:
        raise ValueError(f"unknown --merge {cfg.merge!r}; expected one of {' | '.join(MERGE_MODES)}.")
    if cfg.grouper not in GROUPERS:
        raise ValueError(f"unknown --grouper {cfg.grouper!r}; expected one of {' | '.join(GROUPERS)}.")
    if not is_dynamic_sharing(cfg.sharing):
        if cfg.grouper != "hetdps":
            raise ValueError(f"--grouper {cfg.grouper} regroups online; use it with --sharing hetdps.")
        return
    explicit = cfg.sharing.strip().lower()[len("hetdps"):].lstrip(":")
    default_init = TrainConfig.__dataclass_fields__["hetdps_init"].default
    if explicit and cfg.hetdps_init.strip().lower() not in (explicit, default_init):
        raise ValueError(f"--sharing {cfg.sharing} already names the initial layout ({explicit}) but --hetdps-init "
                         f"says {cfg.hetdps_init}; give it once: --sharing hetdps --hetdps-init {cfg.hetdps_init} "
                         f"or --sharing hetdps:{cfg.hetdps_init}.")
    if cfg.hetdps_kind not in KINDS:
        raise ValueError(f"unknown --hetdps-kind {cfg.hetdps_kind!r}; expected one of {' | '.join(KINDS)}.")
    if cfg.hetdps_no_structure not in ("merge", "keep"):
        raise ValueError(f"unknown --hetdps-no-structure {cfg.hetdps_no_structure!r}; expected merge | keep.")
    for name in ("hetdps_interval", "hetdps_rollouts", "hetdps_samples", "seps_samples"):
        if getattr(cfg, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1 (got {getattr(cfg, name)}).")
    if cfg.grouper == "seps" and cfg.seps_k < 1:
        raise ValueError("--grouper seps needs the number of groups: give --seps-k K (K >= 1); SePS does not "
                         "find it itself (paper Table 2).")
    if cfg.grouper == "madps" and not 0 <= cfg.madps_fusion < cfg.madps_division:
        raise ValueError(f"--grouper madps needs 0 <= --madps-fusion < --madps-division (got "
                         f"{cfg.madps_fusion}, {cfg.madps_division}).")
