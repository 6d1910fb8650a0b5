"""BenchMARL integration: grouped model, batch -> SamplePool, HetDPS and measurement callbacks."""
from __future__ import annotations

import json

import pytest
import torch

pytest.importorskip("benchmarl", reason="BenchMARL is not installed (optional extra: pip install -c constraints.txt -e '.[benchmarl]')")

from benchmarl.algorithms import MappoConfig  # noqa: E402
from benchmarl.experiment import Experiment, ExperimentConfig  # noqa: E402
from benchmarl.models.mlp import MlpConfig  # noqa: E402
from tensordict import TensorDict  # noqa: E402
from torchrl.data import Composite, Unbounded  # noqa: E402

from hetero.cvae import CVAEConfig  # noqa: E402
from hetero.grouping import match  # noqa: E402
from hetero.quantify import QuantifyConfig  # noqa: E402
from marl_backends.benchmarl import GroupedMlpConfig  # noqa: E402
from marl_backends.benchmarl.callbacks import HetDPSCallback, HeterogeneityMonitor, pool_from_batch  # noqa: E402
from marl_backends.benchmarl.tasks import pms_colours, pms_task  # noqa: E402

N, DO, DA = 4, 3, 2


def make_model(init_layout: str = "nps", centralised: bool = False, share: bool = False):  # noqa: ANN201
    inp = Composite({"agents": Composite({"observation": Unbounded(shape=(N, DO))}, shape=(N,))})
    out = Composite({"agents": Composite({"logits": Unbounded(shape=(N, DA))}, shape=(N,))})
    return GroupedMlpConfig(num_cells=[8], init_layout=init_layout, seed=3).get_model(
        input_spec=inp, output_spec=out, agent_group="agents", input_has_agent_dim=True, n_agents=N,
        centralised=centralised, share_params=share, device="cpu", action_spec=None)


def forward(model, obs: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
    td = TensorDict({"agents": TensorDict({"observation": obs}, batch_size=obs.shape[:2])}, batch_size=obs.shape[:1])
    return model(td).get(("agents", "logits"))


def test_grouped_mlp_layout_decides_which_agents_share_outputs():
    model = make_model("groups:0,0,1,1")
    same = torch.randn(5, 1, DO).expand(5, N, DO)  # every agent sees the same observation
    y = forward(model, same)
    assert torch.equal(y[:, 0], y[:, 1]) and torch.equal(y[:, 2], y[:, 3])
    assert not torch.allclose(y[:, 0], y[:, 2])
    assert forward(make_model("fps"), same).std(1).max() == 0


def test_regroup_moves_rows_and_adam_moments_in_place():
    model = make_model("nps")
    params = list(model.parameters())
    opt = torch.optim.Adam(params, lr=1e-2)
    forward(model, torch.randn(7, N, DO)).pow(2).sum().backward()
    opt.step()
    before = {id(p): (p.detach().clone(), opt.state[p]["exp_avg"].clone()) for p in params}
    storage = [p.data_ptr() for p in params]
    plan = match(model.layout_tuple, (0, 0, 1, 1), merge="average")  # agents 0,1 -> group 0; 2,3 -> group 1
    model.regroup_(plan, [opt])
    assert model.layout_tuple == (0, 0, 1, 1)
    assert [p.data_ptr() for p in params] == storage  # in place: functional copies see the change
    for p in params:
        w, m = before[id(p)]
        assert torch.allclose(p[0], (w[0] + w[1]) / 2) and torch.allclose(p[1], (w[2] + w[3]) / 2)
        assert torch.allclose(opt.state[p]["exp_avg"][1], (m[2] + m[3]) / 2)
    same = torch.randn(5, 1, DO).expand(5, N, DO)
    y = forward(model, same)
    assert torch.equal(y[:, 0], y[:, 1]) and torch.equal(y[:, 2], y[:, 3])
    with pytest.raises(ValueError, match="made against layout"):
        model.regroup_(plan, [opt])  # the plan's old layout is no longer the model's


def test_shared_centralised_output_is_refused_with_the_fix():
    with pytest.raises(ValueError, match="MlpConfig as critic_model_config"):
        make_model("fps", centralised=True, share=True)


def test_pool_from_batch_one_hot_actions_and_episode_ids():
    e, t, n_act = 2, 4, 5
    done = torch.zeros(e, t, 1, dtype=torch.bool)
    done[0, 1] = True  # env 0: episode ends after step 1
    batch = TensorDict({
        "agents": TensorDict({"observation": torch.randn(e, t, N, 6), "action": torch.randint(0, n_act, (e, t, N))},
                             batch_size=(e, t, N)),
        "next": TensorDict({"agents": TensorDict({"observation": torch.randn(e, t, N, 6),
                                                  "reward": torch.randn(e, t, N, 1)}, batch_size=(e, t, N)),
                            "done": done}, batch_size=(e, t)),
    }, batch_size=(e, t))
    pool = pool_from_batch(batch, "agents", n_actions=n_act, local_state_dims=4).validate()
    assert pool.rows == e * t and pool.action.shape == (e * t, N, n_act) and pool.local_state.shape[-1] == 4
    assert torch.equal(pool.action.argmax(-1), batch["agents", "action"].reshape(-1, N))
    assert pool.episode.tolist() == [0, 0, 1, 1, 5, 5, 5, 5]
    with pytest.raises(ValueError, match="n_actions"):
        pool_from_batch(batch, "agents")


def experiment_config(tmp_path, frames: int, batch: int) -> ExperimentConfig:  # noqa: ANN001
    cfg = ExperimentConfig.get_from_yaml()
    cfg.max_n_frames, cfg.on_policy_collected_frames_per_batch = frames, batch
    cfg.on_policy_n_envs_per_worker, cfg.on_policy_n_minibatch_iters, cfg.on_policy_minibatch_size = batch // 50, 1, batch
    cfg.evaluation, cfg.render, cfg.loggers, cfg.create_json, cfg.checkpoint_at_end = False, False, ["csv"], False, False
    cfg.save_folder = str(tmp_path)
    return cfg


def small_mlp() -> MlpConfig:
    return MlpConfig(num_cells=[32, 32], layer_class=torch.nn.Linear, activation_class=torch.nn.Tanh)


def test_hetdps_callback_regroups_benchmarl_mappo_into_the_colours(tmp_path):
    """PMS with 2 colours x 3 agents from one shared network: the first round splits by colour, and
    the regrouped model reaches the collector's policy and the loss's functional copy alike. The pool
    carries S^E from the scenario's info; a model-free grouping is applied once the next round confirms
    it, and no round runs at the last iteration."""
    def build(restore_file=None):  # noqa: ANN001, ANN202
        cfg = experiment_config(tmp_path, 4000, 1000)  # rounds after iterations 1, 2, 3; none after 4
        cfg.checkpoint_at_end, cfg.restore_file = True, restore_file
        cb = HetDPSCallback(interval=1, pool_rollouts=1, local_state_dims=4)
        return Experiment(task=pms_task((3, 3)), algorithm_config=MappoConfig.get_from_yaml(),
                          model_config=GroupedMlpConfig(num_cells=[32, 32], init_layout="fps"),
                          critic_model_config=small_mlp(), seed=0, config=cfg, callbacks=[cb]), cb

    exp, cb = build()
    exp.run()
    rounds = cb.hetdps.history
    assert [r.update for r in rounds] == [1, 2, 3]
    assert "split" in rounds[1].plan["actions"] and "confirmed" in rounds[1].info["note"], rounds[1].info
    assert all("S^E" in r.info["measure"] for r in rounds)
    assert cb.trainer.layout == pms_colours((3, 3))
    loss = exp.losses["agents"]
    obs = torch.randn(8, 1, exp.observation_spec["agents", "observation"].shape[-1]).expand(8, 6, -1)
    td = TensorDict({"agents": TensorDict({"observation": obs}, batch_size=(8, 6))}, batch_size=(8,))
    with torch.no_grad():
        mine = exp.algorithm.get_policy_for_loss("agents").module[0](td.clone()).get(("agents", "loc"))
        with loss.actor_network_params.to_module(loss.actor_network):
            theirs = loss.actor_network.module[0](td.clone()).get(("agents", "loc"))
    assert torch.equal(mine, theirs)
    assert torch.equal(mine[:, 0], mine[:, 2]) and not torch.equal(mine[:, 0], mine[:, 3])
    lines = (exp.folder_name / "hetdps" / "hetdps_rounds.jsonl").read_text().splitlines()
    assert [json.loads(x)["update"] for x in lines] == [1, 2, 3]
    assert (exp.folder_name / "hetdps" / "hetdps_round_0000002.png").exists()
    scalars = {p.stem for p in exp.folder_name.rglob("scalars/*.csv")}
    assert {"hetdps_n_groups", "hetdps_d_0_3", "hetdps_agent_5"} <= scalars
    # a BenchMARL checkpoint carries the layout (in the loss's parameters) and the HetDPS rounds
    restored, cb2 = build(str(next(exp.folder_name.glob("checkpoints/*.pt"))))
    assert cb2.trainer.layout == pms_colours((3, 3)) and [r.update for r in cb2.hetdps.history] == [1, 2, 3]
    restored.close()


def test_monitor_measures_meta_and_policy_het_without_changing_benchmarl(tmp_path):
    small = QuantifyConfig(train_samples=300, eval_samples=150, cvae=CVAEConfig(epochs=5))
    mon = HeterogeneityMonitor(interval=1, kinds=("meta", "policy"), quantify_config=small, local_state_dims=4)
    cfg = experiment_config(tmp_path, 500, 500)
    cfg.share_policy_params = False  # BenchMARL's own non-shared MLP policy: 6 different networks
    exp = Experiment(task=pms_task((3, 3)), algorithm_config=MappoConfig.get_from_yaml(), model_config=small_mlp(),
                     critic_model_config=small_mlp(), seed=0, config=cfg, callbacks=[mon])
    exp.run()
    assert [(h["iteration"], h["kind"]) for h in mon.history] == [(1, "meta"), (1, "policy")]
    pol = mon.history[1]["matrix"]
    assert pol.shape == (6, 6) and (pol[~torch.eye(6, dtype=torch.bool).numpy()] > 0).all()
    out = exp.folder_name / "heterogeneity"
    for name in ("meta_0000001.npz", "policy_0000001.png", "policy_evolution.png", "measurements.jsonl"):
        assert (out / name).exists(), name
    scalars = {p.stem for p in exp.folder_name.rglob("scalars/*.csv")}
    assert {"heterogeneity_policy_mean", "heterogeneity_meta_d_0_5"} <= scalars


def test_hydra_runner_builds_benchmarl_experiment_with_hetdps(tmp_path):
    from hydra import compose, initialize_config_module

    from marl_backends.benchmarl.model import grouped_models
    from marl_backends.benchmarl.run import experiment_from_hydra

    overrides = ["algorithm=mappo", "task=vmas/balance", "+hetdps.interval=3", "+hetdps.monitor=2",
                 "+hetdps.init=nps", f"experiment.save_folder={tmp_path}", "experiment.loggers=[]",
                 "experiment.create_json=false", "experiment.evaluation=false", "model.num_cells=[8]"]
    with initialize_config_module(config_module="benchmarl.conf", version_base=None):
        cfg = compose(config_name="config", overrides=overrides)
        exp = experiment_from_hydra(cfg, "vmas/balance")
        (model,) = grouped_models(exp.algorithm.get_policy_for_loss("agents"))
        assert model.layout_tuple == tuple(range(len(exp.group_map["agents"])))
        assert [type(c).__name__ for c in exp.callbacks] == ["HetDPSCallback", "HeterogeneityMonitor"]
        assert exp.callbacks[0].cfg.interval == 3 and exp.callbacks[1].interval == 2
        exp.close()
        with pytest.raises(ValueError, match="unknown hetdps keys"):
            experiment_from_hydra(compose(config_name="config", overrides=overrides + ["+hetdps.intervall=1"]),
                                  "vmas/balance")
