#!/usr/bin/env python3
"""PyTorch side of the `ops_dnngp` group in benches/benches/ops.rs: one DNNGP block's layers at
DNNGP's default size (batch 64, 64 filters x 215 PC scores), each forward then backward of the
sum, as the Rust bench times them. Tells which layer makes a flex training step slower than
PyTorch's (DNNGP v3 differs from the paper variant by two batch norms).

    python ops.py [--threads 2] [--iters 50] [--warmup 5]

Prints one line per op: median and minimum ms. Never run in CI.
"""

import argparse
import os
import statistics
import sys
import time
import warnings


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=5)
    args = ap.parse_args()
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    import torch
    import torch.nn.functional as F

    # PyTorch warns that "same" padding of an even kernel copies the input; reference.py
    # keeps that copy too (README, "What cannot be mirrored exactly").
    warnings.filterwarnings("ignore", message="Using padding='same'")
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    x = torch.rand(64, 64, 215, requires_grad=True)
    conv = torch.nn.Conv1d(64, 64, 4, padding="same")
    bn = torch.nn.BatchNorm1d(64, eps=1e-3, momentum=0.01)
    bn.train()
    ops = {
        "conv1d_k4_same_fwd_bwd": lambda: conv(x).sum().backward(),
        "batch_norm_train_fwd_bwd": lambda: bn(x).sum().backward(),
        "dropout_fwd_bwd": lambda: F.dropout(x, 0.5, training=True).sum().backward(),
        "relu_fwd_bwd": lambda: F.relu(x).sum().backward(),
    }
    print(f"torch {torch.__version__}, {args.threads} thread(s), x = [64, 64, 215]", file=sys.stderr)
    for name, op in ops.items():
        times = []
        for i in range(args.warmup + args.iters):
            start = time.perf_counter()
            op()
            if i >= args.warmup:
                times.append((time.perf_counter() - start) * 1e3)
        print(f"ops_dnngp/{name:<28} median {statistics.median(times):8.3f} ms   min {min(times):8.3f} ms")


if __name__ == "__main__":
    main()
