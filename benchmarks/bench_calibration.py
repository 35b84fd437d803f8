"""Calibration metrics and temperature fitting against the libraries people trust (issue 5).

1. ECE, MCE, ACE and NLL on 1,000,000 x 10 predictions, side by side with netcal and
   torchmetrics (values must agree to 1e-6 where the binning conventions agree; random float
   confidences never sit exactly on a bin edge, so here they always do). torchmetrics computes
   in float32, so its rows also show the difference to infobench on float32-rounded
   probabilities. Target: at least as fast as the faster peer. infobench's row reductions run
   in torch when the process has torch loaded (every infobench run does), else in numpy: both
   are timed.
2. Temperature fit on 100,000 x 100 logits: the fitted T within 0.1% of a scalar-optimiser
   reference (scipy's bounded Brent on the NLL as a function of log T), in about 3 s or less.
   The reference minimises the plain NLL, so the fit runs with its prior off (prior_strength 0).
3. Vector, matrix and Dirichlet calibration (issue 15): one Newton fit at fixed penalties
   against scipy's L-BFGS-B on the same objective (objective values must agree to 1e-7), and the
   whole fit as a run does it (5-fold cross-validation over 5 penalty values, then the final
   fit) on 359 x 10 and 3,000 x 10 logits. Target: the whole fit well under a second.

Peers are never runtime dependencies: they live in their own virtual environment, created on
first use at ``$INFOBENCH_PEERS`` (default ``~/.cache/infobench/peers``). It reuses this
environment's torch through a .pth file (so no other torch build is ever pulled) and installs
``netcal`` and ``torchmetrics`` without their optional dependencies. If that fails the peer
columns say so and the infobench numbers are still printed.
"""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.optimize import minimize_scalar

from infobench import metrics as M
from infobench.tasks.calibration.methods.affine import Design, fit_penalised
from infobench.tasks.calibration.methods.dirichlet import DirichletCalibration
from infobench.tasks.calibration.methods.matrix import MatrixScaling
from infobench.tasks.calibration.methods.temperature import fit_temperature
from infobench.tasks.calibration.methods.vector import VectorScaling

PEERS = Path(os.environ.get("INFOBENCH_PEERS", Path.home() / ".cache" / "infobench" / "peers"))
PEER_PACKAGES = ["netcal==1.4.0", "torchmetrics==1.9.0", "lightning-utilities"]
N, C, BINS = 1_000_000, 10, 15

PEER_SCRIPT = r"""
import json, sys, time
import numpy as np
import torch
data = np.load(sys.argv[1])
probs, labels, logits = data["probs"], data["labels"], data["logits"]
out = {}

def best(fn, repeats=3):
    times = []
    for _ in range(repeats):
        start = time.perf_counter(); value = fn(); times.append(time.perf_counter() - start)
    return float(value), min(times)

try:
    from netcal.metrics import ACE, ECE, MCE
    out["netcal"] = {
        "ece": best(lambda: ECE(bins=%(bins)d).measure(probs, labels)),
        "mce": best(lambda: MCE(bins=%(bins)d).measure(probs, labels)),
        "ace": best(lambda: ACE(bins=%(bins)d).measure(probs, labels)),
    }
except Exception as exc:
    out["netcal"] = {"error": repr(exc)}
try:
    from torchmetrics.functional.classification import multiclass_calibration_error
    p, y = torch.from_numpy(probs), torch.from_numpy(labels)
    out["torchmetrics"] = {
        "ece": best(lambda: multiclass_calibration_error(p, y, %(classes)d, n_bins=%(bins)d, norm="l1")),
        "mce": best(lambda: multiclass_calibration_error(p, y, %(classes)d, n_bins=%(bins)d, norm="max")),
    }
    z = torch.from_numpy(logits)
    out["torch"] = {"nll": best(lambda: torch.nn.functional.cross_entropy(z, y))}
except Exception as exc:
    out["torchmetrics"] = {"error": repr(exc)}
print(json.dumps(out))
""".replace("%(bins)d", str(BINS)).replace("%(classes)d", str(C))


def peer_python() -> Path | None:
    """The peers' interpreter, creating their environment on first use; None if that fails."""
    python = PEERS / "bin" / "python"
    if not (PEERS / ".ready").exists():
        print(f"creating the peers' environment in {PEERS} (netcal, torchmetrics) ...", flush=True)
        try:
            subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(PEERS)], check=True)
            subprocess.run([sys.executable, "-m", "venv", str(PEERS)], check=True)
            target = subprocess.run([str(python), "-c", "import site; print(site.getsitepackages()[0])"],
                                    check=True, capture_output=True, text=True).stdout.strip()
            Path(target, "infobench_torch.pth").write_text(site.getsitepackages()[0] + "\n")
            subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", *PEER_PACKAGES], check=True)
            (PEERS / ".ready").touch()
        except (subprocess.CalledProcessError, OSError) as exc:
            print(f"peers unavailable: {exc}")
            return None
    return python


def best_time(fn, repeats: int = 3) -> tuple[float, float]:
    times, value = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return float(value), min(times)


def metric_table() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, size=(N, C))
    probs = M.softmax(logits)
    labels = (probs.cumsum(1) > rng.random((N, 1)) ** 0.7).argmax(1)  # over-confident predictor
    def ours_table() -> dict:
        return {
            "ece": best_time(lambda: M.ece(probs, labels, BINS)),
            "mce": best_time(lambda: M.mce(probs, labels, BINS)),
            "ace": best_time(lambda: M.ace(probs, labels, BINS)),
            "nll": best_time(lambda: M.nll(logits, labels)),
        }

    # the row reductions run in torch when the process has it loaded, as every infobench run does;
    # a session without torch gets the numpy path: both are timed
    loaded, M._loaded_torch = M._loaded_torch, lambda arr: None
    numpy_only = ours_table()
    M._loaded_torch = loaded
    import torch  # noqa: F401

    ours = ours_table()
    # torchmetrics casts confidences to float32: compare it also with infobench on float32 input
    probs32 = probs.astype(np.float32)
    ours32 = {"ece": M.ece(probs32, labels, BINS), "mce": M.mce(probs32, labels, BINS)}
    peers: dict = {}
    python = peer_python()
    if python is not None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "preds.npz"
            np.savez(path, probs=probs, labels=labels, logits=logits)
            done = subprocess.run([str(python), "-c", PEER_SCRIPT, str(path)], capture_output=True, text=True)
            if done.returncode == 0:
                peers = json.loads(done.stdout.strip().splitlines()[-1])
            else:
                print("peer run failed:", done.stderr[-2000:])
    print(f"\nmetrics on {N:,} x {C} predictions, {BINS} equal-width bins (best of 3)")
    print(f"{'metric':<6} {'peer':<13} {'infobench':>12} {'peer value':>12} {'|diff|':>9} "
          f"{'ours s':>8} {'peer s':>8} {'peer/ours':>9}")
    for metric, (value, seconds) in ours.items():
        rows = [(name, res[metric]) for name, res in peers.items() if metric in res]
        for name, res in peers.items():
            if "error" in res:
                print(f"{metric:<6} {name:<13} unavailable: {res['error'][:60]}")
        if not rows:
            print(f"{metric:<6} {'-':<13} {value:>12.8f} {'':>12} {'':>9} {seconds:>8.3f}")
        for name, (peer_value, peer_seconds) in rows:
            diff = abs(value - peer_value)
            flag = "" if diff <= 1e-6 else "  DISAGREE"
            if name == "torchmetrics":
                flag = f"  (float32: |diff| {abs(ours32[metric] - peer_value):.1e})"
            print(f"{metric:<6} {name:<13} {value:>12.8f} {peer_value:>12.8f} {diff:>9.1e} "
                  f"{seconds:>8.3f} {peer_seconds:>8.3f} {peer_seconds / seconds:>9.2f}{flag}")
    print("infobench without torch loaded (numpy path), seconds: "
          + ", ".join(f"{metric} {seconds:.3f} (same value: {abs(value - ours[metric][0]) < 1e-12})"
                      for metric, (value, seconds) in numpy_only.items()))


def temperature_check() -> None:
    rng = np.random.default_rng(1)
    n, c, true_t = 100_000, 100, 2.0
    logits = rng.normal(0, 3, size=(n, c))
    probs = M.softmax(logits / true_t)
    labels = (probs.cumsum(1) > rng.random((n, 1))).argmax(1)
    start = time.perf_counter()
    t = fit_temperature(logits, labels, prior_strength=0)
    seconds = time.perf_counter() - start
    ref = minimize_scalar(lambda log_t: M.nll(logits / np.exp(log_t), labels), bounds=(-3, 3),
                          method="bounded", options={"xatol": 1e-9})
    t_ref = float(np.exp(ref.x))
    rel = abs(t - t_ref) / t_ref
    print(f"\ntemperature fit on {n:,} x {c} logits (labels drawn at T = {true_t})")
    print(f"  infobench T = {t:.6f} in {seconds:.2f} s; scipy bounded Brent on log T: {t_ref:.6f} "
          f"({ref.nfev} NLL evaluations); relative difference {rel:.1e} "
          f"({'within' if rel <= 1e-3 else 'OUTSIDE'} 0.1%; target time <= 3 s)")


def reference_affine_objective(x: np.ndarray, labels: np.ndarray, diagonal: bool, penalties, prior: float):
    """The objective of ``infobench.tasks.calibration.methods.affine`` written out on its own:
    value and gradient of the flat parameters, for scipy's L-BFGS-B."""
    n, c = x.shape
    l2_offdiag, l2_bias, l2_diag = penalties
    onehot = np.eye(c)[labels]
    off = ~np.eye(c, dtype=bool)

    def unpack(flat):
        if diagonal:
            return np.diag(flat[:c]), flat[c:]
        w = flat.reshape(c, c + 1)
        return w[:, :c], w[:, c]

    def objective(flat):
        w, b = unpack(flat)
        scores = x @ w.T + b
        log_q = M.log_softmax(scores)
        diag = np.diag(w)
        value = (-np.mean(log_q[np.arange(n), labels]) + l2_offdiag / (c * (c - 1)) * np.sum(w[off] ** 2)
                 + l2_bias / c * np.sum(b**2) + l2_diag / c * np.sum((diag - diag.mean()) ** 2)
                 + prior / n * np.sum(diag - np.log(diag)))
        resid = (np.exp(log_q) - onehot) / n
        grad_w = resid.T @ x + 2 * l2_offdiag / (c * (c - 1)) * np.where(off, w, 0.0)
        grad_w[np.diag_indices(c)] += 2 * l2_diag / c * (diag - diag.mean()) + prior / n * (1 - 1 / diag)
        grad_b = resid.sum(axis=0) + 2 * l2_bias / c * b
        if diagonal:
            return value, np.concatenate([np.diag(grad_w), grad_b])
        return value, np.hstack([grad_w, grad_b[:, None]]).ravel()

    start = np.concatenate([np.ones(c), np.zeros(c)]) if diagonal else np.hstack([np.eye(c), np.zeros((c, 1))]).ravel()
    diag_index = np.arange(c) if diagonal else np.arange(c) * (c + 2)
    bounds = [(1e-8, None) if i in set(diag_index) else (None, None) for i in range(len(start))]
    return objective, start, bounds


def affine_row(name: str, cls, logits: np.ndarray, labels: np.ndarray) -> None:
    """One line of the affine table: a Newton fit against L-BFGS-B, and the whole fit."""
    from scipy.optimize import minimize

    penalties, prior = (1.0, 1.0, 1.0), 1.0
    x = M.log_softmax(logits) if cls.on_log_probs else logits
    design = Design(x, cls.diagonal)
    objective, start, bounds = reference_affine_objective(x, labels, cls.diagonal, penalties, prior)

    def lbfgs() -> float:
        return minimize(objective, start, jac=True, method="L-BFGS-B", bounds=bounds,
                        options={"maxiter": 10_000, "gtol": 1e-10, "ftol": 1e-15}).fun

    _, newton_s = best_time(lambda: fit_penalised(design, labels, penalties, prior)[0])
    theta = fit_penalised(design, labels, penalties, prior)
    # the reference packs (diag | bias) for vector scaling, (W | b) row by row as theta for matrices
    ours = objective(np.concatenate([theta[0::2], theta[1::2]]) if cls.diagonal else theta)[0]
    ref, lbfgs_s = best_time(lbfgs)
    _, whole_s = best_time(lambda: cls().fit(logits, labels).bias[0])
    flag = "" if abs(ours - ref) <= 1e-7 else "  DISAGREE"
    print(f"{name:<10} {len(labels):>5} {newton_s:>9.4f} {lbfgs_s:>9.4f} {lbfgs_s / newton_s:>13.1f}"
          f" {abs(ours - ref):>8.1e} {whole_s:>11.3f}{flag}")


def affine_check() -> None:
    print("\nvector / matrix / Dirichlet calibration, 10 classes, labels drawn at T = 2 (best of 3)")
    print(f"{'method':<10} {'n':>5} {'newton s':>9} {'L-BFGS s':>9} {'L-BFGS/newton':>13} {'|dL|':>8}"
          f" {'whole fit s':>11}  (one fit at lambda = mu = nu = 1; whole fit: 25 CV fits + 1)")
    rng = np.random.default_rng(2)
    cases = []
    for n in (359, 3000):
        logits = rng.normal(0, 4, size=(n, 10))
        cases.append((logits, (M.softmax(logits / 2).cumsum(1) > rng.random((n, 1))).argmax(1)))
    for name, cls in (("vector", VectorScaling), ("matrix", MatrixScaling), ("dirichlet", DirichletCalibration)):
        for logits, labels in cases:
            affine_row(name, cls, logits, labels)


if __name__ == "__main__":
    metric_table()
    temperature_check()
    affine_check()
