"""fit_cvaes: K CVAEs trained as one stacked model behave as K independent CVAEs."""
import pytest
import torch

from hetero.cvae import CVAE, CVAEConfig, StackedCVAEs, fit_cvae, fit_cvaes

CFG = CVAEConfig(hidden=16, latent=4, batch_size=64, epochs=2)


def _data(m=400, dx=5, dy=6, n=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(m, dx, generator=g), torch.randn(m, dy, generator=g) * 3 + 1
    mask = torch.rand(m, dy, generator=g) > 0.2
    return x, y, mask, torch.randint(n, (m,), generator=g), n


@pytest.mark.parametrize("n_agents,encoder_x", [(0, True), (4, True), (4, False)])
def test_stacked_loss_equals_the_cvae_loss(n_agents, encoder_x):
    """Same parameters and noise: the stacked forward (row gather for the one-hot id) is CVAE.loss."""
    x, y, mask, agent, _ = _data()
    model = CVAE(x, y, n_agents, CFG, encoder_x=encoder_x)
    ids = agent if n_agents else None
    torch.manual_seed(1)
    ref = model.loss(x, y, mask.float(), ids)
    torch.manual_seed(1)
    got = StackedCVAEs([model]).loss(x[None], y[None], mask.float()[None], None if ids is None else ids[None])
    torch.testing.assert_close(got[0], ref)


def _member_params(model: CVAE) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_members_are_independent():
    """Member 0 ends up the same whatever member 1 trains on: own gradients, own statistics."""
    x, y, mask, agent, n = _data()
    rows = torch.arange(400)
    torch.manual_seed(0)
    a, _ = fit_cvaes(x, y, mask, CFG, [rows[:150], rows[150:300]], agent, n, torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    b, _ = fit_cvaes(x, y, mask, CFG, [rows[:150], rows[250:]], agent, n, torch.Generator().manual_seed(0))
    torch.testing.assert_close(_member_params(a[0]), _member_params(b[0]))
    torch.testing.assert_close(a[0].norm_x.mean, x[:150].mean(0))
    assert not torch.allclose(_member_params(a[1]), _member_params(b[1]))


def test_unequal_members_train_and_unstack_into_plain_cvaes():
    x, y, mask, agent, n = _data()
    parts = [torch.arange(0, 30), torch.arange(30, 400)]  # 30 pairs < one minibatch, 370 pairs
    ticks = []
    models, hist = fit_cvaes(x, y, mask, CFG, parts, agent, n, torch.Generator().manual_seed(0),
                             progress=lambda e, l: ticks.append(e))
    assert len(models) == 2 and [len(h) for h in hist] == [2, 2] and ticks == [0, 0, 1, 1]
    assert all(not m.training for m in models)
    mu, sigma = models[1].encode(x[:7], agent=agent[:7])
    assert mu.shape == sigma.shape == (7, CFG.latent) and (sigma > 0).all()
    with pytest.raises(ValueError, match="non-empty"):
        fit_cvaes(x, y, mask, CFG, [torch.arange(5), torch.arange(0)], agent, n)


def test_fit_cvae_is_reproducible_from_the_seed_and_learns():
    x, y, mask, _, _ = _data(m=600)
    runs = []
    for _ in range(2):
        torch.manual_seed(3)
        runs.append(fit_cvae(x, y, mask, CVAEConfig(hidden=16, latent=4, epochs=4), generator=torch.Generator().manual_seed(3)))
    torch.testing.assert_close(_member_params(runs[0][0]), _member_params(runs[1][0]), rtol=0, atol=1e-6)
    assert runs[0][1] == runs[1][1] and runs[0][1][-1] < runs[0][1][0]


def test_own_adam_is_torch_adam():
    """The few-line Adam (no torch._dynamo import) takes torch.optim.Adam's steps exactly."""
    from hetero.cvae import _Adam

    g = torch.Generator().manual_seed(0)
    ours = [torch.randn(3, 4, 5, generator=g).requires_grad_(), torch.randn(3, 1, 5, generator=g).requires_grad_()]
    ref = [p.detach().clone().requires_grad_() for p in ours]
    opt_ours, opt_ref = _Adam(ours, lr=3e-3), torch.optim.Adam(ref, lr=3e-3)
    for _ in range(20):
        x = torch.randn(3, 7, 4, generator=g)
        for params, opt in ((ours, opt_ours), (ref, opt_ref)):
            torch.baddbmm(params[1], x, params[0]).pow(2).sum().backward()
            opt.step()
        opt_ref.zero_grad()
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_early_stopping_keeps_each_members_best_validation_epoch():
    """With validation pairs each member ends with the parameters of its best validation epoch:
    exactly those of a run without validation stopped at that epoch (the validation pass draws
    nothing from the training generator); training stops `patience` epochs after the last gain."""
    x, y, mask, agent, n = _data(m=600)
    y[400:] = -y[400:]  # validation pairs from another distribution: the members soon overfit to theirs
    parts, val = [torch.arange(0, 200), torch.arange(200, 400)], [torch.arange(400, 500), torch.arange(500, 600)]
    cfg = CVAEConfig(hidden=16, latent=4, batch_size=32, epochs=40, patience=3)
    ticks = []
    torch.manual_seed(0)  # the members' initialisation
    models, _ = fit_cvaes(x, y, mask, cfg, parts, agent, n, torch.Generator().manual_seed(0),
                          progress=lambda e, l: ticks.append(e), validation=val)
    kept = [m.epochs_kept for m in models]
    ran = max(ticks) + 1
    assert all(1 <= k <= ran for k in kept) and ran == max(kept) + cfg.patience < cfg.epochs, (kept, ran)
    for k in range(2):  # member k = the plain run cut at its kept epoch
        torch.manual_seed(0)
        plain, _ = fit_cvaes(x, y, mask, CVAEConfig(hidden=16, latent=4, batch_size=32, epochs=kept[k]), parts, agent, n,
                             torch.Generator().manual_seed(0))
        torch.testing.assert_close(_member_params(models[k]), _member_params(plain[k]))
    with pytest.raises(ValueError, match="validation"):
        fit_cvaes(x, y, mask, cfg, parts, agent, n, validation=[torch.arange(400, 500)])
