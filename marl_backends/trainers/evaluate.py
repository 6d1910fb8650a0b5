"""``hetero evaluate RUN``: run a trained policy outside training.

Loads the trainer saved in a ``hetero train`` run folder (on-policy: ``load_trainer``; off-policy:
``load_offpolicy_trainer``), or one of its ``checkpoints/iter_*.pt``, plays ``--episodes``
episodes (one per parallel env, each env's first episode) with the greedy policy (``--stochastic``
samples instead) and reports the episode return (summed over time, mean over agents: the
``eval_return`` of ``metrics.csv``), its spread, the episode length and, where the env reports
``info["won"]`` (SMAX, SMACv2), the win rate. ``--gif PATH`` records env 0's first episode with
the env's own renderer (VMAS envs: PMS, spread, VMAS built-ins). ``--json PATH`` writes the
numbers.

Hook into a CLI: ``add_evaluate_arguments(subparser)`` and ``subparser.set_defaults(func=cmd_evaluate)``.
From Python: ``evaluate_run("runs/<run>", episodes=10, seed=0)`` returns an :class:`EvalResult`.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch


@dataclass(frozen=True)
class EvalResult:
    """Per-episode numbers of one evaluation; ``win`` is empty when the env reports no wins."""

    returns: tuple[float, ...]
    lengths: tuple[int, ...]
    wins: tuple[bool, ...] = ()
    info: dict = field(default_factory=dict)

    @property
    def mean_return(self) -> float:
        return float(np.mean(self.returns))

    @property
    def win_rate(self) -> float | None:
        return float(np.mean(self.wins)) if self.wins else None

    def to_dict(self) -> dict:
        r = np.asarray(self.returns)
        out = {**self.info, "episodes": len(r), "return_mean": float(r.mean()), "return_std": float(r.std()),
               "return_min": float(r.min()), "return_max": float(r.max()),
               "length_mean": float(np.mean(self.lengths)), **asdict(self)}
        out.pop("info")
        if self.wins:
            out["win_rate"] = self.win_rate
        return out


def load_run(run: str | Path, env_factory=None, device: str = "cpu"):  # noqa: ANN001, ANN201
    """The trainer of a run folder or checkpoint file, on- or off-policy (networks only)."""
    from marl_backends.offpolicy.checkpoint import is_offpolicy_checkpoint, load_offpolicy_trainer
    from marl_backends.trainers.checkpoint import load_trainer

    path = Path(run)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist; pass a run folder written by `hetero train` "
                                "(or one of its checkpoints/iter_*.pt).")
    if is_offpolicy_checkpoint(path):
        return load_offpolicy_trainer(path, env_factory, device=device)
    return load_trainer(path, env_factory, device=device, progress=False)


def _policy(trainer, stochastic: bool, seed: int) -> Callable:  # noqa: ANN001
    """obs -> env actions [E, N(, A)] of the trained policy (greedy unless ``stochastic``)."""
    gen = torch.Generator(device=trainer.device).manual_seed(seed)
    if hasattr(trainer, "act_behaviour"):  # off-policy: deterministic actor mu(o) (+ exploration noise)
        if stochastic:
            return lambda o: trainer.act_behaviour(o.obs, o.avail_actions, generator=gen)[0]
        return lambda o: trainer._to_env(trainer.act(o, explore=False))  # noqa: SLF001 - same scaling as training
    spec = trainer.spec

    def act(o):  # noqa: ANN001, ANN202
        a, _, _ = trainer.actor.act(o.obs.to(trainer.device), o.avail_actions, deterministic=not stochastic,
                                    generator=gen if stochastic else None)
        if not spec.discrete and spec.action_low is not None:
            a = a.clamp(spec.action_low, spec.action_high)
        return a
    return act


def _env_factory(trainer, env_factory=None):  # noqa: ANN001, ANN202
    if env_factory is not None:
        return env_factory
    if hasattr(trainer, "env_factory"):  # on-policy trainers keep theirs
        return trainer.env_factory
    from marl_backends.envs import make_env

    cont = not trainer.env.spec.discrete
    return lambda n, seed: make_env(trainer.cfg.env, num_envs=n, device=trainer.device, seed=seed, continuous=cont)


@torch.no_grad()
def rollout(trainer, env, episodes: int, seed: int, stochastic: bool = False,  # noqa: ANN001
            frames: list | None = None) -> EvalResult:
    """The first episode of each of ``env``'s ``episodes`` parallel envs under the trained policy.
    ``frames`` (a list) receives env 0's rendered frames, one per step, until its episode ends."""
    if env.num_envs != episodes:
        raise ValueError(f"rollout needs one env per episode: env has {env.num_envs}, episodes={episodes}.")
    act = _policy(trainer, stochastic, seed)
    o = env.reset(seed=seed)
    dev = trainer.device
    ret = torch.zeros(episodes, device=dev)
    length = torch.zeros(episodes, dtype=torch.long, device=dev)
    alive = torch.ones(episodes, dtype=torch.bool, device=dev)
    won = torch.zeros(episodes, dtype=torch.bool, device=dev)
    reports_wins = False
    for _ in range(env.spec.max_steps):
        if frames is not None and bool(alive[0]):
            frames.append(env.render_frame(0))
        res = env.step(act(o))
        done = res.done.to(dev)
        ret += res.reward.to(dev).mean(-1) * alive
        length += alive.long()
        if "won" in res.info:
            reports_wins = True
            won |= alive & done & res.info["won"].to(dev).bool()
        alive &= ~done
        if not bool(alive.any()):
            break
        o = res.obs
    return EvalResult(returns=tuple(ret.tolist()), lengths=tuple(length.tolist()),
                      wins=tuple(won.tolist()) if reports_wins else ())


def evaluate_run(run: str | Path, episodes: int = 10, seed: int = 0, stochastic: bool = False,
                 gif: str | Path | None = None, device: str = "cpu", env_factory=None) -> EvalResult:  # noqa: ANN001
    """Load ``run`` and evaluate it (see the module docstring); ``gif`` writes env 0's episode."""
    if episodes < 1:
        raise ValueError(f"--episodes {episodes}: evaluate at least one episode.")
    trainer = load_run(run, env_factory, device)
    env = _env_factory(trainer, env_factory)(episodes, seed)
    if gif is not None and not hasattr(env, "render_frame"):
        raise ValueError(f"--gif: env {trainer.cfg.env!r} cannot render frames here; rendering works for the VMAS "
                         "envs (pms_*, spread_*, VMAS built-ins). Drop --gif to evaluate without a recording.")
    frames: list | None = [] if gif is not None else None
    res = rollout(trainer, env, episodes, seed, stochastic, frames)
    info = {"run": str(run), "env": trainer.cfg.env, "algo": getattr(trainer.cfg, "algo", ""),
            "layout": list(trainer.layout), "seed": seed, "policy": "stochastic" if stochastic else "greedy",
            **_progress(trainer)}
    if frames:
        info["gif"] = str(write_gif(frames, gif, fps=10))
        info["gif_frames"] = len(frames)
    return EvalResult(res.returns, res.lengths, res.wins, info)


def _progress(trainer) -> dict:  # noqa: ANN001
    """Iteration and env frames the loaded policy was trained for."""
    if hasattr(trainer, "env_steps"):  # off-policy: an iteration is train_interval steps of every env
        return {"iteration": trainer.env_steps // (trainer.cfg.train_interval * trainer.env.num_envs),
                "frames": int(trainer.env_steps)}
    return {"iteration": int(trainer.iteration), "frames": int(trainer.frames)}


def write_gif(frames: list, path: str | Path, fps: int = 10) -> Path:
    """An animated GIF of RGB frames [H, W, 3] (Pillow), ``fps`` frames per second, looping."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images = [Image.fromarray(np.asarray(f, dtype=np.uint8)) for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
    return path


def add_evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="RUN", help="run folder written by `hetero train` (or a checkpoints/iter_*.pt)")
    parser.add_argument("--episodes", type=int, default=10, help="episodes, one per parallel env (default 10)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the evaluation envs (default 0)")
    parser.add_argument("--stochastic", action="store_true", help="sample actions instead of the greedy policy")
    parser.add_argument("--gif", metavar="PATH", default=None, help="record env 0's episode as a GIF (VMAS envs)")
    parser.add_argument("--json", metavar="PATH", default=None, help="also write the results as JSON")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")


def cmd_evaluate(args: argparse.Namespace, env_factory=None) -> int:  # noqa: ANN001
    """``hetero evaluate``: print the evaluation (and write --json); 2 for a bad RUN or option."""
    try:
        res = evaluate_run(args.run, args.episodes, args.seed, args.stochastic, args.gif, args.device, env_factory)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    d = res.to_dict()
    print(f"{d['run']}: {d['algo']} on {d['env']}, iteration {d['iteration']} ({d['frames']} frames), "
          f"layout {'-'.join(map(str, d['layout']))}")
    print(f"{d['episodes']} episodes ({d['policy']} policy, seed {d['seed']}): return {d['return_mean']:.4g} "
          f"+/- {d['return_std']:.3g} (min {d['return_min']:.4g}, max {d['return_max']:.4g}), "
          f"length {d['length_mean']:.1f}")
    if "win_rate" in d:
        print(f"win rate {d['win_rate']:.2f}")
    if "gif" in d:
        print(f"gif: {d['gif']} ({d['gif_frames']} frames of env 0)")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(d, indent=1) + "\n")
        print(f"wrote {args.json}")
    return 0
