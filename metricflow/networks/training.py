"""Training a finite metric network (section 3.3): the sigma loss (B.11) against the
reference kappa, optax Adam or SGD, an optional L-BFGS finish, validation after every epoch
and snapshots of the metric-NTK (eq. 2.7); and the cost estimate of a run.

Example:
  >>> result = train(TrainConfig(model="metric", n_points=20_000, epochs=20))
  >>> result.val_sigma[0], result.val_sigma[-1], result.gain
"""

from __future__ import annotations

import os
import time
from typing import Optional

import numpy as np

from metricflow._jax import jax, jnp
from metricflow.errors import MetricflowError, check_memory
from metricflow.geometry.measures import SigmaReport, measure_sigma, weighted_mean_se
from metricflow.geometry.measures import sigma as sigma_of
from metricflow.geometry.points import Points, SampleConfig, first_points, sample_points
from metricflow.geometry.reference import reference_kappa
from metricflow.networks import metric_ntk
from metricflow.networks.building import (
    all_finite,
    components_fn,
    evaluate_in_chunks,
    init_params,
    metric_fn,
    n_parameters,
    nonpd_fraction,
    to_numpy,
)
from metricflow.networks.config import TrainConfig
from metricflow.networks.curvature import RICCI_POINTS, ricci_scalar
from metricflow.networks.invariant import BASE_SECONDS, prepare_params
from metricflow.networks.outputs import model_input, take
from metricflow.networks.results import TrainResult
from metricflow.progress import Progress, panel, publish

__all__ = [
    "SECONDS_PER_POINT_EPOCH",
    "WORKER_BYTES",
    "stream_key",
    "network_points",
    "split_points",
    "train",
    "train_partial",
    "estimate_train",
]


def stream_key(seed: int, stream: int):
    """An independent jax key for (seed, stream); no global RNG."""
    return jax.random.fold_in(jax.random.PRNGKey(seed % 2**32), stream)


def network_points(config: TrainConfig) -> tuple[Points, Points]:
    """(train, validation) of ``train(config)``: a seeded split of one sample, or, with
    ``config.test``, a sample of the train points and the first n_val of the test sample."""
    c = config
    if c.test is None:
        return split_points(sample_points(SampleConfig(c.manifold, c.n_points, c.seed)), c.n_val, c.seed)
    return sample_points(SampleConfig(c.manifold, c.n_points - c.n_val, c.seed)), first_points(c.test, c.n_val)


def split_points(points: Points, n_val: int, seed: int) -> tuple[Points, Points]:
    """(train, validation): a seeded random split, validation of n_val points."""
    perm = np.random.default_rng([seed, 1]).permutation(len(points))
    return points.subset(np.sort(perm[n_val:])), points.subset(np.sort(perm[:n_val]))


def _optimizer(config: TrainConfig, steps: int):
    """optax Adam or SGD: linear warm-up from 0 over config.warmup_epochs' steps, then a
    cosine decay to lr * lr_final_fraction at the last step."""
    import optax

    total = max(steps, 1)
    warmup = min(config.warmup_epochs * steps // max(config.epochs, 1), total - 1)
    if warmup > 0:
        rate = optax.warmup_cosine_decay_schedule(0.0, config.lr, warmup, total, end_value=config.lr * config.lr_final_fraction)
    else:
        rate = optax.cosine_decay_schedule(config.lr, total, alpha=config.lr_final_fraction)
    return optax.adam(rate) if config.optimizer == "adam" else optax.sgd(rate)


def train(config: TrainConfig, progress: Optional[Progress] = None) -> TrainResult:
    """Train the metric network of ``config`` with the sigma loss (B.11) and record it.

    Per step: L(theta) = sum_B w |1 - eta| / sum_B w over a batch B of train points, with
    eta = det g_theta / (kappa_ref |Omega|^2) and kappa_ref the manifold's reference kappa
    (``reference_kappa``); the optimizer step is optax Adam (or SGD). Optionally an L-BFGS
    finish (``optax.lbfgs``, full batch on the first lbfgs_points train points). After every
    epoch: sigma on the validation set in both conventions with standard errors
    (``measure_sigma``), and at ``config.ntk_epochs`` the metric-NTK (eq. 2.7) of the n^2
    real metric components on the first ntk_probe validation points.

    Args:
      config: a TrainConfig.
      progress: optional progress(epoch, epochs, message), after every epoch.

    Returns:
      TrainResult.
    """
    import optax


    c = config
    report = progress or (lambda *a, **k: None)
    start = time.perf_counter()
    load_start = os.getloadavg()[0]
    check_memory(estimate_train(c).bytes, f"training on {c.n_points:,} points")
    kref = reference_kappa(c.manifold)
    tr, va = network_points(c)
    d, n = c.manifold.degree, c.manifold.degree - 2
    x_tr, x_va = model_input(tr), model_input(va)
    k_loss = float(kref.value)
    total = c.epochs + (1 if c.lbfgs_steps else 0)
    report(0, total, f"sampled {len(tr):,} train + {len(va):,} validation points")

    f = metric_fn(c, n, d)
    f_jit = jax.jit(f)
    params = init_params(c, stream_key(c.seed, 2), n, d)
    prepare_seconds = 0.0
    if c.features == "symmetric":  # feature scales and the base potential, counted as training time
        params, prepare_seconds = prepare_params(c, params, tr)
        report(0, total, f"features scaled{' and base potential fitted' if c.base_k else ''} in {prepare_seconds:.1f} s")
    params_initial = to_numpy(params)
    opt = _optimizer(c, c.epochs * (len(tr) // c.batch_size))
    opt_state = opt.init(params)

    def loss(p, x, omega_sq, w):
        return sigma_of(f(p, x), omega_sq, w, k_loss)

    def step(p, s, x, omega_sq, w):
        value, grads = jax.value_and_grad(loss)(p, x, omega_sq, w)
        updates, s = opt.update(grads, s, p)
        return optax.apply_updates(p, updates), s, value

    run_epoch = epoch_runner(step, c.batch_size)

    def validate(p) -> tuple[SigmaReport, float]:
        g = evaluate_in_chunks(f_jit, p, x_va)
        return measure_sigma(g, va.omega_sq, va.weights, kref), nonpd_fraction(g)

    probe = take(x_va, slice(0, c.ntk_probe))
    comp = components_fn(c, n, d)
    ntk_epochs = c.ntk_epochs
    spectra, changes, theta0 = [], [], None
    ntk_seconds = 0.0

    def snapshot(p) -> None:
        nonlocal theta0, ntk_seconds
        t0 = time.perf_counter()
        theta = metric_ntk.metric_ntk(comp, p, probe, probe, c.ntk_implementation)
        if theta0 is None:
            theta0 = theta
        spectra.append(metric_ntk.spectrum(theta))
        changes.append(float(np.linalg.norm(theta - theta0) / np.linalg.norm(theta0)))
        ntk_seconds += time.perf_counter() - t0

    reports: list[SigmaReport] = []
    nonpd = np.full(c.epochs + 1, np.nan)
    train_seconds = np.zeros(c.epochs + 1)
    train_seconds[0] = prepare_seconds
    train_loss, epoch_seconds = np.full(c.epochs, np.nan), np.zeros(c.epochs)
    fs = measure_sigma(va.g_fs, va.omega_sq, va.weights, kref)
    rep, nonpd[0] = validate(params)
    reports.append(rep)
    if 0 in ntk_epochs:
        snapshot(params)
    report(0, total, f"epoch 0: validation sigma {rep.sigma:.4f}")
    publish(progress, lambda: train_partial([r.sigma for r in reports], train_loss))

    rng = np.random.default_rng([c.seed, 3])
    n_tr = len(tr)
    data = jax.device_put((x_tr, tr.omega_sq, tr.weights))
    elapsed = prepare_seconds
    for epoch in range(1, c.epochs + 1):
        t0 = time.perf_counter()
        params, opt_state, values = run_epoch(params, opt_state, data, rng.permutation(n_tr))
        train_loss[epoch - 1] = float(np.mean(np.asarray(values)))
        if not all_finite(params):
            raise MetricflowError(f"the parameters became NaN/inf in epoch {epoch}; lower the learning rate {c.lr:g}")
        epoch_seconds[epoch - 1] = time.perf_counter() - t0
        elapsed += epoch_seconds[epoch - 1]
        train_seconds[epoch] = elapsed
        rep, nonpd[epoch] = validate(params)
        reports.append(rep)
        if epoch in ntk_epochs:
            snapshot(params)
        report(epoch, total, f"epoch {epoch}: validation sigma {rep.sigma:.4f} ± {rep.sigma_se:.4f}")
        publish(progress, lambda: train_partial([r.sigma for r in reports], train_loss))

    lbfgs_sigma, lbfgs_se, lbfgs_seconds, lbfgs_done = [], [], [], 0
    if c.lbfgs_steps:
        params, lbfgs_sigma, lbfgs_se, lbfgs_seconds, lbfgs_done = _lbfgs_finish(c, loss, params, tr, validate, elapsed, report, total)
    final = validate(params)[0] if c.lbfgs_steps else reports[-1]

    ricci = (None,) * 6
    if c.ricci and c.model == "phi":
        sub = va.subset(np.arange(min(RICCI_POINTS, len(va))))
        ricci = (
            *weighted_mean_se(np.abs(ricci_scalar(c, None, sub)), sub.weights),
            *weighted_mean_se(np.abs(ricci_scalar(c, params_initial, sub)), sub.weights),
            *weighted_mean_se(np.abs(ricci_scalar(c, params, sub)), sub.weights),
        )

    spectra_arr = np.asarray(spectra) if spectra else np.zeros((0, 0))
    w_raw, w_log = metric_ntk.wasserstein_to_first(spectra_arr)
    field_of = lambda name: np.array([getattr(r, name) for r in reports])  # noqa: E731
    val_sigma = field_of("sigma")
    return TrainResult(
        config=c,
        kappa=kref,
        val_sigma=val_sigma,
        val_sigma_se=field_of("sigma_se"),
        val_sigma_self=field_of("sigma_self"),
        val_sigma_self_se=field_of("sigma_self_se"),
        val_kappa_self=field_of("kappa_self"),
        train_seconds=train_seconds,
        train_loss=train_loss,
        gain=float(val_sigma[0] / final.sigma),
        sigma_fs=fs.sigma,
        sigma_fs_se=fs.sigma_se,
        nonpd_fraction=nonpd,
        lbfgs_sigma=np.asarray(lbfgs_sigma, dtype=np.float64),
        lbfgs_sigma_se=np.asarray(lbfgs_se, dtype=np.float64),
        lbfgs_seconds=np.asarray(lbfgs_seconds, dtype=np.float64),
        lbfgs_steps_done=lbfgs_done,
        final=final,
        ntk_epochs=np.asarray(ntk_epochs, dtype=np.int64),
        ntk_spectra=spectra_arr,
        ntk_change=np.asarray(changes, dtype=np.float64),
        ntk_wasserstein=w_raw,
        ntk_wasserstein_log=w_log,
        ricci_fs=ricci[0],
        ricci_fs_se=ricci[1],
        ricci_initial=ricci[2],
        ricci_initial_se=ricci[3],
        ricci_final=ricci[4],
        ricci_final_se=ricci[5],
        params_initial=params_initial,
        params_final=to_numpy(params),
        n_params=n_parameters(params),
        epoch_seconds=epoch_seconds,
        ntk_seconds=ntk_seconds,
        seconds=time.perf_counter() - start,
        load_average=(load_start, os.getloadavg()[0]),
    )


def epoch_runner(step, batch_size: int):
    """One epoch of ``step`` as one compiled call (a ``lax.scan`` over the batches).

    Args:
      step: step(params, opt_state, *batch) -> (params, opt_state, loss), where ``batch`` is
        ``data`` (below) restricted to batch_size points; traced, not called, here.
      batch_size: points per step.

    Returns:
      run(params, opt_state, data, perm) -> (params, opt_state, losses): data a tuple of the
      train set's per-point arrays, or NamedTuples of them (a ModelInput), all leading with N,
      on the device (``jax.device_put``); perm (N,) int, the order, whose first
      (N // batch_size) * batch_size entries make the batches (the rest is left out); losses
      (N // batch_size,) float64. The same steps, in the same order, as calling ``step``
      batch by batch, at one dispatch per epoch instead of one per batch.
    """

    @jax.jit
    def run_batches(p, s, data, batches):
        def body(carry, idx):
            p, s, value = step(*carry, *jax.tree_util.tree_map(lambda a: a[idx], data))
            return (p, s), value

        (p, s), values = jax.lax.scan(body, (p, s), batches)
        return p, s, values

    def run(p, s, data, perm):
        n = len(perm) // batch_size * batch_size
        return run_batches(p, s, data, jnp.asarray(perm[:n]).reshape(-1, batch_size))

    return run


def train_partial(val_sigma, train_loss: np.ndarray) -> dict:
    """Training's partial series (``metricflow.progress.publish``): the validation sigma of
    epochs 0..e and the train loss (mean train-batch sigma) of epochs 1..e."""
    e = len(val_sigma) - 1
    return {"panels": [panel("σ per epoch", "epoch", "σ", {
        "validation": (range(e + 1), val_sigma), "train loss (batch σ)": (range(1, e + 1), train_loss[:e]),
    }, log_y=True)]}


def _lbfgs_finish(c: TrainConfig, loss, params, tr: Points, validate, elapsed: float, report, total: int):
    """c.lbfgs_steps full-batch L-BFGS steps (optax.lbfgs, zoom line search) on the first
    c.lbfgs_points train points, validated every c.lbfgs_every steps.

    Returns:
      (params, sigma list, se list, training-seconds list, steps done).
    """
    import optax

    m = min(c.lbfgs_points, len(tr))
    xs = model_input(tr.subset(np.arange(m)))
    omega, w = jnp.asarray(tr.omega_sq[:m]), jnp.asarray(tr.weights[:m])

    def value_fn(p):
        return loss(p, xs, omega, w)

    opt = optax.lbfgs()
    state = opt.init(params)
    value_and_grad = optax.value_and_grad_from_state(value_fn)

    @jax.jit
    def step(p, s):
        value, grad = value_and_grad(p, state=s)
        updates, s = opt.update(grad, s, p, value=value, grad=grad, value_fn=value_fn)
        return optax.apply_updates(p, updates), s

    sigmas, ses, seconds, done = [], [], [], 0
    for i in range(1, c.lbfgs_steps + 1):
        t0 = time.perf_counter()
        new, state = step(params, state)
        jax.block_until_ready(new)
        elapsed += time.perf_counter() - t0
        if not all_finite(new):
            break  # keep the last finite parameters; lbfgs_steps_done says how far it got
        params, done = new, i
        if i % c.lbfgs_every == 0 or i == c.lbfgs_steps:
            rep = validate(params)[0]
            sigmas.append(rep.sigma)
            ses.append(rep.sigma_se)
            seconds.append(elapsed)
            report(c.epochs, total, f"L-BFGS step {i}: validation sigma {rep.sigma:.4f} ± {rep.sigma_se:.4f}")
    return params, sigmas, ses, seconds, done


# Seconds per point-epoch on 2 cores (benchmarks/bench_networks.py, 3 x 64, load 5-7), training
# and validation together: metric 0.5-1 s, phi (batch 100) 11-16 s per epoch of 10^5 points.
SECONDS_PER_POINT_EPOCH = {"metric": 1e-5, "phi": 1.7e-4}
# The worker's share of a training job's peak memory. TensorFlow is not imported any more:
# it added about 530 MiB (benchmarks/bench_networks.py --startup), taken off 1600 MiB.
WORKER_BYTES = 1100 * 2**20


def estimate_train(config: TrainConfig):
    """Expected seconds and peak bytes of ``train(config)``.

    Time: ~10 s start (JAX, compile), sampling ~1e-5 s per point, then per point-epoch the
    model's cost (SECONDS_PER_POINT_EPOCH, scaled by depth * width^2 / (3 * 64^2), at least
    0.3 of it); per metric-NTK snapshot with k = 9 P rows ~3e-10 k^2 (parameters) for the
    kernel (3x for phi) and 7e-10 k^3 for the spectrum, plus ~10 s of compile; the phi
    model's Ricci check ~50 s; an L-BFGS step ~3 full-batch gradients. Memory: the worker
    (WORKER_BYTES), ~3 kB per point of chart data, batch activations (the L-BFGS batch too),
    and the metric-NTK ((9P)^2 float64, twice) with the parameter jacobian (9P x parameters).
    """
    from metricflow.estimates import Estimate

    c = config
    scale = max(0.3, c.depth * c.width**2 / (3 * 64**2))
    seconds = 10.0 + 1e-5 * c.n_points + SECONDS_PER_POINT_EPOCH[c.model] * scale * c.n_points * c.epochs
    params = c.depth * c.width**2 + 30 * c.width
    k = 9 * c.ntk_probe
    snaps = len(c.ntk_epochs)
    if snaps:
        seconds += 10.0 + snaps * (3e-10 * k * k * params * (3 if c.model == "phi" else 1) + 7e-10 * k**3)
    if c.model == "phi" and c.ricci:
        seconds += 50.0
    if c.base_k:
        seconds += BASE_SECONDS
    # an L-BFGS step: a full-batch gradient and its line search, about 3 gradients
    seconds += 3 * SECONDS_PER_POINT_EPOCH[c.model] * scale * min(c.lbfgs_points, c.n_points) * c.lbfgs_steps
    batch = max(c.batch_size, min(c.lbfgs_points, c.n_points) if c.lbfgs_steps else 0)
    memory = WORKER_BYTES + 3000 * c.n_points + 8 * 20 * batch * c.width * c.depth
    memory += 16 * k * k + 8 * k * params
    return Estimate(float(seconds), int(memory))
