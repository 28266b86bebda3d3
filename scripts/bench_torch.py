#!/usr/bin/env python3
"""bench_torch.py - the trainer's default network in PyTorch, for a side by
side throughput reference (optional; not part of `make test`).

    python3 scripts/bench_torch.py [--threads 2] [--batch 64] [--epochs 1]
                                   [--limit 0] [--repeats 3]

Same network (conv 8@5x5 + ReLU, maxpool 2, conv 16@5x5 + ReLU, maxpool 2,
dense 256->10, softmax cross-entropy; 5,994 parameters), same input
(per-image z-score), same optimizer (SGD, momentum 0.9, weight decay 5e-4,
lr 0.05). Reports training samples/s per epoch (data already in memory as a
tensor, so loading is excluded, as in the trainer), the median over
--repeats epochs, and the time to evaluate the test set. Compare with

    scripts/bench.sh            (or: ./trainer --set train.epochs=1 ...)

on the same machine, at the same time of day: the cores are shared.
Needs only torch (Debian: python3-torch); reads the gz IDX files itself.
"""
import argparse
import gzip
import os
import statistics
import struct
import sys
import time

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:
    sys.stderr.write("bench_torch.py: PyTorch is not installed (Debian: apt-get install python3-torch); skipped\n")
    sys.exit(2)

MFLOP_PER_SAMPLE = 1.70496  # 2 x 852,480 multiply-adds, forward and backward


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    magic = struct.unpack(">I", data[:4])[0]
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    t = torch.frombuffer(bytearray(data[4 + 4 * ndim:]), dtype=torch.uint8)
    return t.reshape(dims)


def zscore(images):
    x = images.float().reshape(images.shape[0], -1)
    mean = x.mean(dim=1, keepdim=True)
    std = x.std(dim=1, unbiased=False, keepdim=True).clamp_min(1e-12)
    return ((x - mean) / std).reshape(-1, 1, images.shape[1], images.shape[2])


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 5)
        self.conv2 = nn.Conv2d(8, 16, 5)
        self.fc = nn.Linear(256, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc(x.flatten(1))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "..", "data", "mnist"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=1, help="epochs per repeat")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--limit", type=int, default=0, help="training images (0 = all)")
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    t0 = time.perf_counter()
    xtr = zscore(read_idx(os.path.join(a.data, "train-images-idx3-ubyte.gz")))
    ytr = read_idx(os.path.join(a.data, "train-labels-idx1-ubyte.gz")).long()
    xte = zscore(read_idx(os.path.join(a.data, "t10k-images-idx3-ubyte.gz")))
    yte = read_idx(os.path.join(a.data, "t10k-labels-idx1-ubyte.gz")).long()
    load = time.perf_counter() - t0
    if a.limit:
        xtr, ytr = xtr[:a.limit], ytr[:a.limit]
    n = xtr.shape[0]

    net = Net()
    print(f"torch {torch.__version__}: {a.threads} threads, batch {a.batch}, {n} training images, "
          f"{sum(p.numel() for p in net.parameters())} parameters; loaded in {load:.2f} s")
    opt = torch.optim.SGD(net.parameters(), lr=a.lr, momentum=0.9, weight_decay=5e-4)
    rates = []
    for rep in range(a.repeats):
        for ep in range(a.epochs):
            perm = torch.randperm(n)
            net.train()
            t0 = time.perf_counter()
            for s in range(0, n, a.batch):
                idx = perm[s:s + a.batch]
                opt.zero_grad(set_to_none=True)
                loss = F.cross_entropy(net(xtr[idx]), ytr[idx])
                loss.backward()
                opt.step()
            dt = time.perf_counter() - t0
            rates.append(n / dt)
            print(f"repeat {rep + 1} epoch {ep + 1}: {n / dt:.0f} samples/s ({dt:.2f} s), loss {loss.item():.4f}")
    net.eval()
    evals = []
    with torch.no_grad():
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            correct = 0
            for s in range(0, xte.shape[0], 1000):
                correct += (net(xte[s:s + 1000]).argmax(1) == yte[s:s + 1000]).sum().item()
            evals.append(time.perf_counter() - t0)
    med = statistics.median(rates)
    print(f"median training throughput: {med:.0f} samples/s, {med * MFLOP_PER_SAMPLE / 1000:.1f} GFLOP/s")
    print(f"evaluation of {xte.shape[0]} test images: {statistics.median(evals):.3f} s "
          f"(test accuracy {100.0 * correct / xte.shape[0]:.2f}%)")


if __name__ == "__main__":
    main()
