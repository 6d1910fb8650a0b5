"""``python -m marl_backends.benchmarl.run``: BenchMARL's ``benchmarl/run.py`` with HetDPS and measurement.

The same hydra command line as BenchMARL (its config tree and overrides), plus a ``hetdps`` group:

    python -m marl_backends.benchmarl.run algorithm=mappo task=vmas/balance +hetdps.interval=10
    python -m marl_backends.benchmarl.run algorithm=ippo task=vmas/navigation +hetdps.monitor=5

``hetdps`` keys (all optional): ``interval`` (iterations between HetDPS rounds; 0 = no HetDPS,
default 10 when the group is given), ``kind`` (meta), ``merge`` (majority), ``init`` (the first
layout: fps | nps | groups:..., default fps), ``pool`` (batches per round, 2),
``local_state_dims`` (leading observation entries forming s_i; default the whole observation),
``group`` (BenchMARL agent group; default the only one), ``monitor`` (iterations between
Meta-Het / Policy-Het measurements; 0 = none) and ``monitor_kinds`` ([meta, policy]). With HetDPS
on, the policy model (``model=layers/mlp``) becomes its :class:`GroupedMlpConfig` twin; the critic
stays BenchMARL's.
"""
from __future__ import annotations

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from benchmarl.experiment import Experiment
from benchmarl.hydra_config import (
    load_algorithm_config_from_hydra,
    load_experiment_config_from_hydra,
    load_model_config_from_hydra,
    load_task_config_from_hydra,
)
from benchmarl.models.mlp import MlpConfig
from marl_backends.benchmarl.callbacks import HetDPSCallback, HeterogeneityMonitor
from marl_backends.benchmarl.model import GroupedMlpConfig

KEYS = ("interval", "kind", "merge", "init", "pool", "local_state_dims", "group", "monitor", "monitor_kinds")


def experiment_from_hydra(cfg: DictConfig, task_name: str) -> Experiment:
    """BenchMARL's ``load_experiment_from_hydra`` with the ``hetdps`` group applied."""
    het = OmegaConf.to_container(cfg.get("hetdps") or OmegaConf.create({}), resolve=True)
    unknown = sorted(set(het) - set(KEYS))
    if unknown:
        raise ValueError(f"unknown hetdps keys {unknown}; valid: {', '.join(KEYS)}.")
    model = load_model_config_from_hydra(cfg.model)
    callbacks = []
    interval = int(het.get("interval", 10 if het else 0))
    if interval:
        if not isinstance(model, MlpConfig):
            raise ValueError(f"HetDPS needs model=layers/mlp (regrouped as GroupedMlpConfig), got {type(model).__name__}.")
        model = GroupedMlpConfig.from_mlp(model, init_layout=str(het.get("init", "fps")), seed=int(cfg.seed))
        callbacks.append(HetDPSCallback(interval=interval, group=het.get("group"), kind=het.get("kind", "meta"),
                                        merge=het.get("merge", "majority"), pool_rollouts=int(het.get("pool", 2)),
                                        local_state_dims=het.get("local_state_dims"), seed=int(cfg.seed)))
    if int(het.get("monitor", 0)):
        callbacks.append(HeterogeneityMonitor(interval=int(het["monitor"]), group=het.get("group"),
                                              kinds=tuple(het.get("monitor_kinds", ("meta", "policy"))),
                                              local_state_dims=het.get("local_state_dims"), seed=int(cfg.seed)))
    return Experiment(task=load_task_config_from_hydra(cfg.task, task_name),
                      algorithm_config=load_algorithm_config_from_hydra(cfg.algorithm), model_config=model,
                      critic_model_config=load_model_config_from_hydra(cfg.critic_model), seed=cfg.seed,
                      config=load_experiment_config_from_hydra(cfg.experiment), callbacks=callbacks)


@hydra.main(version_base=None, config_path="pkg://benchmarl.conf", config_name="config")
def hydra_experiment(cfg: DictConfig) -> None:
    task_name = HydraConfig.get().runtime.choices.task
    print(f"\nAlgorithm: {HydraConfig.get().runtime.choices.algorithm}, Task: {task_name}\n")
    print(OmegaConf.to_yaml(cfg))
    experiment_from_hydra(cfg, task_name).run()


if __name__ == "__main__":
    hydra_experiment()
