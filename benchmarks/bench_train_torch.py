"""PyTorch eager baseline for bench_train.py: the same 32 -> 256 -> 1 MLP, n = 512, 500 full-batch Adam steps.

Runs in its own virtual environment (torch is never a lawrob dependency):
    python3 -m venv .venv-torch && .venv-torch/bin/pip install torch==2.13.0 numpy
    .venv-torch/bin/python benchmarks/bench_train_torch.py [--runs 8]
"""

import argparse
import json
import statistics
import time

import torch

D, WIDTH, N, STEPS = 32, 256, 512, 500


def one_run(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(N, D, generator=g) / D**0.5
    y = torch.randint(0, 2, (N,), generator=g).float() * 2 - 1
    model = torch.nn.Sequential(torch.nn.Linear(D, WIDTH), torch.nn.ReLU(), torch.nn.Linear(WIDTH, 1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(STEPS):
        opt.zero_grad()
        loss = ((model(x)[:, 0] - y) ** 2).mean()
        loss.backward()
        opt.step()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=8)
    args = parser.parse_args()
    one_run(0)  # warm-up
    times = []
    for seed in range(args.runs):
        start = time.perf_counter()
        one_run(seed)
        times.append(time.perf_counter() - start)
    print(json.dumps({"benchmark": "train_torch_eager", "torch": torch.__version__, "threads": torch.get_num_threads(),
                      "seconds_per_run_median": statistics.median(times), "runs": args.runs}, indent=2))


if __name__ == "__main__":
    main()
