#!/usr/bin/env python3
"""PyTorch reference timings for genopred's four neural networks (DNNGP, DeepGS, DLGWAS, MLP).

Builds each network as the Rust model crates build it (crates/models/*/src/lib.rs), from the
serde JSON of the Rust config, and times on the CPU, at a fixed thread count:

- one training step: forward, data loss (MSE or L1, times ``loss_scale``) plus the model's
  Keras-style L2 penalties, backward, optimiser step, zero_grad (as ``genopred_train::step``);
- one inference batch: ``model.eval()`` under ``torch.no_grad()``;
- with ``--epochs E`` (epoch mode), for entries whose spec names ``epoch_data`` (the fold the Rust
  side encoded, written by ``step-times --epochs``): E whole epochs as ``genopred_train::train``
  runs them (shuffle, last partial batch, validation pass, early-stopping and plateau
  bookkeeping, best weights copied on improvement), early stopping off, then a prediction of the
  test rows; then the same epochs taken apart (batches, steps alone, validation pass).

Usage (called by ``cargo xtask bench-reference``; never run in CI):

    python reference.py --spec SPEC.json --threads T [--steps 20] [--warmup 3] [--epochs E]
                        [--device cpu|cuda] [--out RESULT.json]
    python reference.py --self-test

SPEC.json is a list of ``{"label", "model", "batch", "channels", "length", "config"}`` objects,
``config`` being the Rust model config serialised by serde (``DnngpConfig``, ``DeepGsConfig``,
``DlgwasConfig``, ``MlpConfig``, each with a nested ``train`` = ``TrainConfig``). Keys missing from
``config`` take the Rust defaults below; an unknown key is an error, as in the Rust loader.

See README.md beside this file for the layer-by-layer correspondence with the Rust networks.
"""

import argparse
import copy
import json
import os
import platform
import statistics
import sys
import time
import warnings

# ---------------------------------------------------------------------------------------------
# Rust defaults, transcribed from the `#[derive(Config)]` structs (serde names and values).
# Used only to fill keys a spec leaves out and by --self-test; a spec's values always win.
# ---------------------------------------------------------------------------------------------

# crates/train/src/config.rs, TrainConfig::new()
TRAIN_DEFAULT = {
    "optimizer": "adam",
    "learning_rate": 1e-3,
    "beta_1": 0.9,
    "beta_2": 0.999,
    "epsilon": 1e-7,
    "momentum": 0.0,
    "weight_decay": 0.0,
    "loss": "mse",
    "loss_scale": 1.0,
    "batch_size": 64,
    "epochs": 100,
    "monitor": "val_loss",
    "patience": 25,
    "min_delta": 0.0,
    "restore_best": True,
    "plateau_factor": 0.0,
    "plateau_monitor": "validation",
    "plateau_patience": 10,
    "plateau_min_delta": 1e-4,
    "min_learning_rate": 0.0,
    "standardise_y": True,
    "shuffle": True,
}


def _train(**overrides):
    t = dict(TRAIN_DEFAULT)
    for k, v in overrides.items():
        assert k in t, k
        t[k] = v
    return t


DEFAULTS = {
    # crates/models/dnngp/src/lib.rs, DnngpConfig / dnngp_train()
    "dnngp": {
        "variant": "paper",
        "pca_fit": "train",
        "pca_variance": 0.95,
        "pca_components": 0,
        "filters": 64,
        "kernel": 4,
        "dropout1": 0.5,
        "dropout2": 0.5,
        "head_units": 3,
        "head_dropout": 0.3,
        "l2_kernel": [0.01, 1e-3, 1e-3],
        "l2_bias": [0.1, 1e-5, 1e-4],
        "init_std": 0.05,
        "bn_momentum": 0.99,
        "bn_epsilon": 1e-3,
        "train": _train(
            learning_rate=1e-3,
            epsilon=1e-7,
            batch_size=64,
            epochs=100,
            patience=25,
            restore_best=True,
            plateau_factor=0.1,
            plateau_patience=10,
            min_learning_rate=1e-5,
        ),
    },
    # crates/models/deepgs/src/lib.rs, DeepGsConfig / deepgs_train()
    "deepgs": {
        "filters": 8,
        "kernel": 18,
        "stride": 1,
        "pool": 4,
        "hidden": 32,
        "dropout_conv": 0.2,
        "dropout_hidden": 0.1,
        "dropout_output": 0.05,
        "init_limit": 0.01,
        "scaling": "raw",
        "train": _train(
            optimizer="sgd",
            learning_rate=0.01,
            momentum=0.5,
            weight_decay=1e-5,
            loss_scale=0.5,
            batch_size=30,
            epochs=6000,
            monitor="val_mae",
            patience=600,
            restore_best=False,
        ),
    },
    # crates/models/dlgwas/src/lib.rs, DlgwasConfig / dlgwas_train()
    "dlgwas": {
        "filters": 10,
        "kernel": 4,
        "kernel_wide": 20,
        "dropout": 0.75,
        "isru_alpha": 0.5,
        "l2_conv_kernel": 0.1,
        "l2_conv_bias": 0.01,
        "l2_dense_bias": 0.01,
        "init_std": 0.05,
        "train": _train(
            learning_rate=1e-3,
            epsilon=1e-8,
            batch_size=250,
            epochs=1000,
            monitor="val_mae",
            patience=25,
            restore_best=True,
        ),
    },
    # crates/models/mlp/src/lib.rs, MlpConfig
    "mlp": {
        "hidden": 64,
        "dropout": 0.3,
        "l2": 1e-3,
        "train": _train(batch_size=32, epochs=200, patience=20),
    },
}


def resolve_config(model, user):
    """The Rust defaults of `model` overridden by `user` (nested `train` merged key by key)."""
    if model not in DEFAULTS:
        raise SystemExit(f"unknown model {model!r}; known: {', '.join(sorted(DEFAULTS))}")
    cfg = copy.deepcopy(DEFAULTS[model])
    for key, value in (user or {}).items():
        if key not in cfg:
            raise SystemExit(f"{model}: unknown config key {key!r}; the keys are: {', '.join(sorted(cfg))}")
        if key == "train":
            for tk, tv in value.items():
                if tk not in cfg["train"]:
                    raise SystemExit(
                        f"{model}: unknown config key 'train.{tk}'; the keys are: {', '.join(sorted(cfg['train']))}"
                    )
                cfg["train"][tk] = tv
        else:
            cfg[key] = value
    return cfg


# ---------------------------------------------------------------------------------------------
# Command line first, so the thread count is in the environment before torch loads its
# OpenMP / oneDNN runtimes.
# ---------------------------------------------------------------------------------------------


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--spec", help="JSON list of benchmark entries")
    p.add_argument("--threads", type=int, help="intra-op CPU threads (torch.set_num_threads)")
    p.add_argument("--steps", type=int, default=20, help="timed training steps and inference batches")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps (and batches) before timing")
    p.add_argument("--epochs", type=int, default=0, help="epoch mode: whole epochs per model (0: off)")
    p.add_argument("--device", default="cpu", help="torch device to time on (cpu, cuda)")
    p.add_argument("--out", help="also write the result JSON here")
    p.add_argument("--seed", type=int, default=1, help="torch.manual_seed before each entry")
    p.add_argument(
        "--self-test",
        action="store_true",
        help="check parameter counts against the Rust tests' counts, shapes and one step per model",
    )
    a = p.parse_args(argv)
    if not a.self_test and not a.spec:
        p.error("--spec is required (or --self-test)")
    if a.spec and a.threads is None:
        p.error("--threads is required with --spec")
    if a.threads is not None and a.threads < 1:
        p.error("--threads must be at least 1")
    if a.steps < 1 or a.warmup < 0 or a.epochs < 0:
        p.error("--steps must be >= 1, --warmup and --epochs >= 0")
    return a


ARGS = parse_args() if __name__ == "__main__" else None
if ARGS is not None and ARGS.threads:
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(ARGS.threads)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

# PyTorch warns that padding="same" with an even kernel copies the input into a padded buffer;
# that copy is part of what users' PyTorch ports pay, and README.md notes it.
warnings.filterwarnings("ignore", message="Using padding='same' with even kernel", category=UserWarning)

# ---------------------------------------------------------------------------------------------
# Initialisers (crates/train/src/init.rs). Timing does not depend on them; they keep activations
# in the same range as the Rust networks.
# ---------------------------------------------------------------------------------------------


def init_truncated_normal(layer, std):
    nn.init.trunc_normal_(layer.weight, mean=0.0, std=std, a=-2.0 * std, b=2.0 * std)
    nn.init.zeros_(layer.bias)


def init_uniform(layer, limit):
    nn.init.uniform_(layer.weight, -limit, limit)
    nn.init.zeros_(layer.bias)


def init_glorot(layer):
    # fan_in / fan_out as Keras (and init.rs): in·k and out·k for a convolution.
    nn.init.xavier_uniform_(layer.weight)
    nn.init.zeros_(layer.bias)


def l2_terms(pairs):
    """Keras l2(λ): λ·Σw² for each (tensor, λ) with λ > 0 (init.rs `l2`, `sum_penalties`)."""
    terms = [p.square().sum() * lam for p, lam in pairs if lam > 0.0]
    if not terms:
        return None
    total = terms[0]
    for t in terms[1:]:
        total = total + t
    return total


def conv_same(c_in, c_out, kernel):
    # Keras/TensorFlow "same", stride 1: total padding k-1, floor((k-1)/2) on the left, the rest
    # on the right. PyTorch's padding="same" places it identically (an even kernel pads one more
    # on the right); it implements the asymmetric case as an explicit pad of the input followed
    # by a symmetric convolution.
    return nn.Conv1d(c_in, c_out, kernel, stride=1, padding="same")


# ---------------------------------------------------------------------------------------------
# The networks
# ---------------------------------------------------------------------------------------------


class Dnngp(nn.Module):
    """crates/models/dnngp: variants "paper" and "v3"."""

    def __init__(self, c, channels, length):
        super().__init__()
        if c["variant"] not in ("paper", "v3"):
            raise SystemExit(f"dnngp: unknown variant {c['variant']!r}")
        v3 = c["variant"] == "v3"
        f, k = c["filters"], c["kernel"]

        def bn():
            # Keras momentum m (weight of the old value) is PyTorch's and burn's 1 - m.
            return nn.BatchNorm1d(f, eps=c["bn_epsilon"], momentum=1.0 - c["bn_momentum"])

        self.conv1 = conv_same(channels, f, k)
        self.drop1 = nn.Dropout(c["dropout1"])
        self.bn1 = bn()
        self.conv2 = conv_same(f, f, k)
        self.drop2 = nn.Dropout(c["dropout2"])
        self.bn2 = bn() if v3 else None
        self.conv3 = conv_same(f, f, k)
        self.bn3 = bn() if v3 else None
        self.head = nn.Linear(f * length, c["head_units"]) if v3 else None
        self.head_drop = nn.Dropout(c["head_dropout"]) if v3 else None
        self.out = nn.Linear(c["head_units"] if v3 else f * length, 1)
        for conv in (self.conv1, self.conv2, self.conv3):
            init_truncated_normal(conv, c["init_std"])
        for lin in (self.head, self.out):
            if lin is not None:
                init_glorot(lin)
        self.l2_kernel = list(c["l2_kernel"]) if v3 else [0.0] * 3
        self.l2_bias = list(c["l2_bias"]) if v3 else [0.0] * 3

    def forward(self, x):
        x = self.bn1(self.drop1(F.relu(self.conv1(x))))
        x = self.drop2(F.relu(self.conv2(x)))
        if self.bn2 is not None:
            x = self.bn2(x)
        x = F.relu(self.conv3(x))
        if self.bn3 is not None:
            x = self.bn3(x)
        x = torch.flatten(x, 1)
        if self.head is not None:
            x = self.head_drop(self.head(x))
        return self.out(x)

    def penalty(self):
        convs = (self.conv1, self.conv2, self.conv3)
        return l2_terms(
            [(c.weight, lam) for c, lam in zip(convs, self.l2_kernel)]
            + [(c.bias, lam) for c, lam in zip(convs, self.l2_bias)]
        )


def deepgs_pooled_length(c, markers):
    """deepgs::pooled_length: valid convolution then valid pooling, or None if too short."""
    if markers < c["kernel"]:
        return None
    conv = (markers - c["kernel"]) // c["stride"] + 1
    if conv < c["pool"]:
        return None
    return (conv - c["pool"]) // c["pool"] + 1


class DeepGs(nn.Module):
    """crates/models/deepgs."""

    def __init__(self, c, channels, length):
        super().__init__()
        pooled = deepgs_pooled_length(c, length)
        if pooled is None:
            raise SystemExit(f"deepgs needs at least {c['kernel'] + c['pool'] - 1} markers; got {length}")
        self.conv = nn.Conv1d(channels, c["filters"], c["kernel"], stride=c["stride"], padding=0)
        self.pool = nn.MaxPool1d(c["pool"], stride=c["pool"])
        self.drop_conv = nn.Dropout(c["dropout_conv"])
        self.hidden = nn.Linear(c["filters"] * pooled, c["hidden"])
        self.drop_hidden = nn.Dropout(c["dropout_hidden"])
        self.out = nn.Linear(c["hidden"], 1)
        self.drop_output = nn.Dropout(c["dropout_output"])
        for layer in (self.conv, self.hidden, self.out):
            init_uniform(layer, c["init_limit"])

    def forward(self, x):
        x = self.pool(F.relu(self.conv(x)))
        x = torch.flatten(self.drop_conv(x), 1)
        x = self.drop_hidden(torch.sigmoid(self.hidden(x)))
        return self.drop_output(self.out(x))

    def penalty(self):
        return None


class Dlgwas(nn.Module):
    """crates/models/dlgwas."""

    def __init__(self, c, channels, length):
        super().__init__()
        f = c["filters"]
        self.conv_a = conv_same(channels, f, c["kernel"])
        self.conv_b = conv_same(f, f, c["kernel_wide"])
        self.drop_main = nn.Dropout(c["dropout"])
        self.shortcut = conv_same(channels, f, c["kernel"])
        self.conv_c = conv_same(f, f, c["kernel"])
        self.drop_c = nn.Dropout(c["dropout"])
        self.drop_flat = nn.Dropout(c["dropout"])
        self.out = nn.Linear(f * length, 1)
        for layer in (self.conv_a, self.conv_b, self.shortcut, self.conv_c, self.out):
            init_truncated_normal(layer, c["init_std"])
        self.alpha = c["isru_alpha"]
        self.l2 = (c["l2_conv_kernel"], c["l2_conv_bias"], c["l2_dense_bias"])

    def forward(self, x):
        main = self.drop_main(self.conv_b(self.conv_a(x)))
        x = main + self.shortcut(x)
        x = self.drop_c(self.conv_c(x))
        x = self.drop_flat(torch.flatten(x, 1))
        y = self.out(x)
        # ISRU: y / sqrt(1 + a·y²)
        return y / torch.sqrt(y.square() * self.alpha + 1.0)

    def penalty(self):
        k, b, db = self.l2
        convs = (self.conv_a, self.conv_b, self.shortcut, self.conv_c)
        return l2_terms([(c.weight, k) for c in convs] + [(c.bias, b) for c in convs] + [(self.out.bias, db)])


class Mlp(nn.Module):
    """crates/models/mlp."""

    def __init__(self, c, channels, length):
        super().__init__()
        self.hidden = nn.Linear(channels * length, c["hidden"])
        self.drop = nn.Dropout(c["dropout"])
        self.out = nn.Linear(c["hidden"], 1)
        init_glorot(self.hidden)
        init_glorot(self.out)
        self.l2 = c["l2"]

    def forward(self, x):
        x = F.relu(self.hidden(torch.flatten(x, 1)))
        return self.out(self.drop(x))

    def penalty(self):
        return l2_terms([(self.hidden.weight, self.l2)])


NETS = {"dnngp": Dnngp, "deepgs": DeepGs, "dlgwas": Dlgwas, "mlp": Mlp}


def build(model, cfg, channels, length):
    return NETS[model](cfg, channels, length)


# ---------------------------------------------------------------------------------------------
# Training step (crates/train/src/trainer.rs: optimizer, step, data_loss)
# ---------------------------------------------------------------------------------------------


def make_optimizer(net, t):
    params = [p for p in net.parameters() if p.requires_grad]
    if t["optimizer"] == "adam":
        # Coupled weight decay, as burn's AdamConfig::with_weight_decay and torch.optim.Adam.
        return torch.optim.Adam(
            params,
            lr=t["learning_rate"],
            betas=(t["beta_1"], t["beta_2"]),
            eps=t["epsilon"],
            weight_decay=t["weight_decay"],
        )
    if t["optimizer"] == "sgd":
        return torch.optim.SGD(
            params,
            lr=t["learning_rate"],
            momentum=t["momentum"],
            dampening=0.0,
            nesterov=False,
            weight_decay=t["weight_decay"],
        )
    raise SystemExit(f"unknown optimizer {t['optimizer']!r}")


def data_loss(out, y, t):
    if t["loss"] == "mse":
        loss = F.mse_loss(out, y)
    elif t["loss"] == "l1":
        loss = (out - y).abs().mean()
    else:
        raise SystemExit(f"unknown loss {t['loss']!r}")
    return loss if t["loss_scale"] == 1.0 else loss * t["loss_scale"]


def step(net, opt, x, y, t):
    """One optimisation step (genopred_train::step); returns the data loss and the objective,
    on the device."""
    fit = data_loss(net(x), y, t)
    pen = net.penalty()
    loss = fit if pen is None else fit + pen
    loss.backward()
    opt.step()
    opt.zero_grad()
    return fit, loss


def train_step(net, opt, x, y, t):
    # The Rust bench reads the data loss back (`into_scalar`); on the CPU this is free.
    return step(net, opt, x, y, t)[0].item()


def param_counts(net):
    trainable = sum(p.numel() for p in net.parameters() if p.requires_grad)
    running = sum(
        m.running_mean.numel() + m.running_var.numel()
        for m in net.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
    )
    return trainable, running


# ---------------------------------------------------------------------------------------------
# Benchmark
# ---------------------------------------------------------------------------------------------


def ms(seconds):
    return seconds * 1000.0


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_entry(entry, threads, steps, warmup, seed, device=None):
    device = device or torch.device("cpu")
    for key in ("label", "model", "channels", "length", "config"):
        if key not in entry:
            raise SystemExit(f"spec entry {entry.get('label', '?')!r} lacks {key!r}")
    model = entry["model"]
    cfg = resolve_config(model, entry["config"])
    t = cfg["train"]
    batch = int(entry.get("batch") or t["batch_size"])
    channels, length = int(entry["channels"]), int(entry["length"])

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    net = build(model, cfg, channels, length).to(device)
    net.train()
    opt = make_optimizer(net, t)
    x = (torch.rand(batch, channels, length) * 2.0).to(device)  # uniform 0..2
    y = torch.randn(batch, 1).to(device)

    for _ in range(warmup):
        train_step(net, opt, x, y, t)
    train_times = []
    last_loss = None
    for _ in range(steps):
        t0 = time.perf_counter()
        last_loss = train_step(net, opt, x, y, t)
        train_times.append(time.perf_counter() - t0)

    net.eval()
    infer_times = []
    with torch.no_grad():
        for _ in range(warmup):
            net(x)
        for _ in range(steps):
            t0 = time.perf_counter()
            out = net(x)
            sync(device)
            infer_times.append(time.perf_counter() - t0)
    assert tuple(out.shape) == (batch, 1), out.shape

    trainable, running = param_counts(net)
    return {
        "label": entry["label"],
        "model": model,
        "variant": cfg.get("variant"),
        "batch": batch,
        "channels": channels,
        "length": length,
        "optimizer": t["optimizer"],
        "loss": t["loss"],
        "train_step_ms_median": ms(statistics.median(train_times)),
        "train_step_ms_min": ms(min(train_times)),
        "train_step_ms_mean": ms(statistics.fmean(train_times)),
        "infer_ms_median": ms(statistics.median(infer_times)),
        "infer_ms_min": ms(min(infer_times)),
        "params": trainable + running,
        "params_total": trainable + running,
        "trainable_params": trainable,
        "bn_running_stats": running,
        "last_train_loss": last_loss,
    }


# ---------------------------------------------------------------------------------------------
# Epoch mode (crates/train/src/trainer.rs: epochs(); genopred_zoo::harness::StepBench::epochs)
# ---------------------------------------------------------------------------------------------


def load_fold(entry):
    """The fold the Rust side encoded: (fit_x, fit_y, valid_x, valid_y, test_x) on the CPU."""
    d = entry["epoch_data"]
    c, length = int(d["channels"]), int(d["length"])
    n_fit, n_valid, n_test = int(d["n_fit"]), int(d["n_valid"]), int(d["n_test"])
    with open(d["file"], "rb") as fh:
        raw = bytearray(fh.read())
    values = torch.frombuffer(raw, dtype=torch.float32)  # little-endian, as written
    sizes = [n_fit * c * length, n_fit, n_valid * c * length, n_valid, n_test * c * length]
    if values.numel() != sum(sizes):
        raise SystemExit(f"{d['file']}: {values.numel()} values, expected {sum(sizes)}")
    parts = list(torch.split(values.clone(), sizes))
    shapes = [(n_fit, c, length), (n_fit, 1), (n_valid, c, length), (n_valid, 1), (n_test, c, length)]
    return [p.reshape(s) for p, s in zip(parts, shapes)]


class Plateau:
    """genopred_train::plateau::ReduceLrOnPlateau (Keras's ReduceLROnPlateau, mode min)."""

    def __init__(self, t):
        self.factor, self.patience = t["plateau_factor"], t["plateau_patience"]
        self.min_delta, self.min_lr = t["plateau_min_delta"], t["min_learning_rate"]
        self.best, self.wait = float("inf"), 0

    def update(self, value, lr):
        if self.factor <= 0.0:
            return lr
        if value < self.best - self.min_delta:
            self.best, self.wait = value, 0
            return lr
        self.wait += 1
        if self.wait >= self.patience:
            self.wait = 0
            return max(lr * self.factor, self.min_lr)
        return lr


def predict(net, x, batch, device):
    net.eval()
    with torch.no_grad():
        out = torch.cat([net(x[i : i + batch].to(device)) for i in range(0, x.shape[0], batch)]).cpu()
    net.train()
    return out


def validation_scores(net, vx, vy, t, device):
    pred = predict(net, vx, max(t["batch_size"], 256), device)
    d = pred.double() - vy.double()
    mse, mae = float(d.square().mean()), float(d.abs().mean())
    data = (mse if t["loss"] == "mse" else mae) * t["loss_scale"]
    with torch.no_grad():
        pen = net.penalty()
    loss = data + (float(pen) if pen is not None else 0.0)
    return {"val_loss": loss, "val_mse": mse, "val_mae": mae}


def train_epochs(net, opt, t, fold, epochs, seed, device):
    """E epochs as trainer.rs runs them, early stopping off; returns the epoch wall times."""
    fit_x, fit_y, vx, vy, _ = fold
    n, bs = fit_x.shape[0], t["batch_size"]
    gen = torch.Generator().manual_seed(seed)
    plateau, lr = Plateau(t), t["learning_rate"]
    best, best_state, times = float("inf"), None, []
    net.train()
    for epoch in range(epochs):
        t0 = time.perf_counter()
        order = torch.randperm(n, generator=gen) if t["shuffle"] else torch.arange(n)
        total = torch.zeros((), device=device)
        total_obj = torch.zeros((), device=device)
        for b, start in enumerate(range(0, n, bs)):
            idx = order[start : start + bs]
            x, y = fit_x[idx].to(device), fit_y[idx].to(device)
            fit, loss = step(net, opt, x, y, t)
            if b == 0 and not torch.isfinite(fit).item():
                raise SystemExit(f"non-finite loss at epoch {epoch + 1}")
            total += fit.detach() * len(idx)
            total_obj += loss.detach() * len(idx)
        train_loss = total.item() / n
        scores = validation_scores(net, vx, vy, t, device)
        value = scores[t["monitor"]]
        if value < best - t["min_delta"]:
            best = value
            if t["restore_best"]:
                best_state = copy.deepcopy(net.state_dict())
        watched = value if t["plateau_monitor"] == "validation" else total_obj.item() / n
        new_lr = plateau.update(watched, lr)
        if new_lr != lr:
            lr = new_lr
            for g in opt.param_groups:
                g["lr"] = lr
        assert train_loss == train_loss, "NaN training loss"
        times.append(time.perf_counter() - t0)
    if best_state is not None:
        net.load_state_dict(best_state)
    return times


def settled(times):
    """Median without the first epoch (allocation and warm-up), in ms."""
    return ms(statistics.median(times[1:] if len(times) > 1 else times))


def epoch_entry(entry, threads, epochs, seed, device):
    model = entry["model"]
    cfg = resolve_config(model, entry["config"])
    t = cfg["train"]
    fold = load_fold(entry)
    channels, length = fold[0].shape[1], fold[0].shape[2]
    torch.set_num_threads(threads)

    # The trainer's run: a fresh network, E epochs, then the test rows predicted.
    torch.manual_seed(seed)
    t0 = time.perf_counter()
    net = build(model, cfg, channels, length).to(device)
    opt = make_optimizer(net, t)
    epoch_times = train_epochs(net, opt, t, fold, epochs, seed, device)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    predict(net, fold[4], max(t["batch_size"], 256), device)
    predict_s = time.perf_counter() - t0

    # The same epochs taken apart.
    torch.manual_seed(seed)
    net = build(model, cfg, channels, length).to(device)
    opt = make_optimizer(net, t)
    gen = torch.Generator().manual_seed(seed)
    fit_x, fit_y, vx, vy, _ = fold
    n, bs = fit_x.shape[0], t["batch_size"]
    steps, batches_t, valid_t = [], [], []
    net.train()
    for _ in range(epochs):
        t0 = time.perf_counter()
        order = torch.randperm(n, generator=gen)
        batches = [(fit_x[order[s : s + bs]].to(device), fit_y[order[s : s + bs]].to(device)) for s in range(0, n, bs)]
        sync(device)
        batches_t.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        total = torch.zeros((), device=device)
        for x, y in batches:
            total += step(net, opt, x, y, t)[0].detach()
        total.item()
        steps.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        validation_scores(net, vx, vy, t, device)
        valid_t.append(time.perf_counter() - t0)
    epoch_ms, steps_ms = settled(epoch_times), settled(steps)
    return {
        "label": entry["label"],
        "model": model,
        "epochs": epochs,
        "epoch_ms_median": epoch_ms,
        "steps_ms_median": steps_ms,
        "batches_ms_median": settled(batches_t),
        "valid_ms_median": settled(valid_t),
        "non_step_share": 1.0 - steps_ms / epoch_ms,
        "epoch_ms": [ms(v) for v in epoch_times],
        "steps_ms": [ms(v) for v in steps],
        "fit_ms": ms(fit_s),
        "predict_ms": ms(predict_s),
    }


def _loadavg():
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def run_spec(args):
    with open(args.spec) as fh:
        spec = json.load(fh)
    if not isinstance(spec, list):
        raise SystemExit(f"{args.spec}: expected a JSON list of entries")
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    load_before = _loadavg()
    results, epoch_results = [], []
    for entry in spec:
        r = bench_entry(entry, args.threads, args.steps, args.warmup, args.seed, device)
        print(
            f"{r['label']:>12}: train {r['train_step_ms_median']:8.2f} ms (min {r['train_step_ms_min']:.2f}), "
            f"infer {r['infer_ms_median']:8.2f} ms, params {r['params_total']:,}",
            file=sys.stderr,
        )
        results.append(r)
        if args.epochs and "epoch_data" in entry:
            e = epoch_entry(entry, args.threads, args.epochs, args.seed, device)
            print(
                f"{e['label']:>12}: epoch {e['epoch_ms_median']:9.1f} ms, steps alone {e['steps_ms_median']:9.1f} ms, "
                f"not steps {100 * e['non_step_share']:5.1f} %, fit {e['fit_ms']:8.0f} ms",
                file=sys.stderr,
            )
            epoch_results.append(e)
    report = {
        "torch_version": torch.__version__,
        "threads": args.threads,
        "torch_num_threads": torch.get_num_threads(),
        "steps": args.steps,
        "warmup": args.warmup,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "cpu_count": os.cpu_count(),
        "mkldnn": torch.backends.mkldnn.is_available(),
        # 1-minute load average before and after: OpenMP workers slow down sharply when other
        # processes compete for the cores, so a busy machine shows here.
        "loadavg_1m_before": load_before,
        "loadavg_1m_after": _loadavg(),
        "device": str(device),
        "results": results,
        "epochs": args.epochs,
        "epoch_results": epoch_results,
    }
    text = json.dumps(report, indent=2)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text + "\n")
    print(text)


# ---------------------------------------------------------------------------------------------
# Self-test: the Rust tests' parameter counts (check_param_count), shapes, one step each
# ---------------------------------------------------------------------------------------------

# (label, model, config overrides, (channels, length), burn num_params) from the model crates'
# `parameter_count_and_shape` tests.
RUST_COUNTS = [
    ("dnngp paper", "dnngp", {}, (1, 300), 52_673),
    ("dnngp v3", "dnngp", {"variant": "v3"}, (1, 300), 91_591),
    ("deepgs", "deepgs", {}, (1, 1225), 77_529),
    ("deepgs", "deepgs", {}, (1, 100), 5_337),
    ("dlgwas", "dlgwas", {}, (4, 1225), 15_011),
    ("dlgwas", "dlgwas", {}, (4, 100), 3_761),
    ("mlp", "mlp", {}, (1, 1225), 78_529),
]


def self_test(out=sys.stdout):
    torch.manual_seed(0)
    failures = 0
    for label, model, over, (channels, length), expected in RUST_COUNTS:
        cfg = resolve_config(model, over)
        net = build(model, cfg, channels, length)
        trainable, running = param_counts(net)
        total = trainable + running
        ok = total == expected
        failures += not ok
        print(
            f"{'ok  ' if ok else 'FAIL'} {label:<12} ({channels}, {length:>4}): params_total {total:>6,} "
            f"(trainable {trainable:,} + bn running {running}) expected {expected:,}",
            file=out,
        )
        # Output shape in both modes, and one training step gives a finite loss.
        x = torch.rand(5, channels, length) * 2.0
        y = torch.randn(5, 1)
        net.train()
        assert tuple(net(x).shape) == (5, 1)
        loss = train_step(net, make_optimizer(net, cfg["train"]), x, y, cfg["train"])
        assert loss == loss and abs(loss) != float("inf"), f"{label}: loss {loss}"
        net.eval()
        with torch.no_grad():
            assert tuple(net(x).shape) == (5, 1)
        # Penalties exist exactly where the Rust `penalty()` returns Some.
        has_pen = net.penalty() is not None
        want_pen = model in ("dlgwas", "mlp") or (model == "dnngp" and cfg["variant"] == "v3")
        assert has_pen == want_pen, f"{label}: penalty present {has_pen}, expected {want_pen}"

    # "same" padding with an even kernel: 1 left and 2 right for k = 4 (TensorFlow, burn).
    conv = nn.Conv1d(1, 1, 4, padding="same")
    x = torch.randn(2, 1, 9)
    with torch.no_grad():
        want = F.conv1d(F.pad(x, (1, 2)), conv.weight, conv.bias)
        got = conv(x)
    same_ok = got.shape == want.shape and torch.allclose(got, want, atol=1e-6)
    failures += not same_ok
    print(f"{'ok  ' if same_ok else 'FAIL'} padding='same', k=4 pads (1 left, 2 right) like TensorFlow and burn", file=out)

    # The checked-in example spec uses exactly the Rust defaults transcribed here.
    example = os.path.join(os.path.dirname(os.path.abspath(__file__)), "example-spec.json")
    if os.path.exists(example):
        with open(example) as fh:
            entries = json.load(fh)
        for e in entries:
            cfg = resolve_config(e["model"], e["config"])
            want = copy.deepcopy(DEFAULTS[e["model"]])
            if e["model"] == "dnngp":
                want["variant"] = cfg["variant"]
            same = cfg == want
            failures += not same
            print(f"{'ok  ' if same else 'FAIL'} example-spec.json {e['label']}: config = Rust defaults", file=out)

    if failures:
        print(f"self-test: {failures} failure(s)", file=out)
        return 1
    print(f"self-test passed (torch {torch.__version__})", file=out)
    return 0


def main(args):
    rc = 0
    if args.self_test:
        # With --spec, stdout carries only the result JSON.
        rc = self_test(sys.stderr if args.spec else sys.stdout)
        if rc:
            return rc
    if args.spec:
        run_spec(args)
    return rc


if __name__ == "__main__":
    sys.exit(main(ARGS))
