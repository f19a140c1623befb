#!/usr/bin/env python3
"""Times in PyTorch the same kernels and networks as a `vgg bench` report, and writes the
same JSON schema (vgg-bench/1), for `vgg bench --compare`.

  vgg bench --json engine.json                         # the engine's run lists the shapes
  python tools/bench_torch.py --shapes-from engine.json -o torch-cpu.json
  python tools/bench_torch.py --shapes-from engine.json --device cuda -o torch-cuda.json
  vgg bench --compare torch-cpu.json

Every f32 kernel of the engine's report is timed at the same shape with the matching
torch.nn.functional op (conv2d+relu, linear+relu, max_pool2d, batch_norm+relu,
local_response_norm, adaptive_avg_pool2d, unfold for im2col, softmax), median of --runs
after a warm-up; the networks (torchvision vgg11/16/19, random weights, eval mode) at the
report's batch sizes, and its training steps (train mode, cross-entropy, backward, SGD with
momentum); conv/dgrad and conv/wgrad through torch.nn.grad. Wall clock, with
torch.cuda.synchronize() on CUDA.

Each network row carries "precision": on CPU "fp32"; on CUDA three rows per network, "fp32"
(TF32 off), "tf32" (TF32 on) and "amp-fp16" (autocast to fp16, channels_last, a GradScaler
in training: PyTorch's mixed precision, the counterpart of the engine's f16 rows). The
kernel rows follow --tf32.

Needs: torch, torchvision.
"""

import argparse
import datetime
import json
import re
import statistics
import time

import torch
import torch.nn.functional as F
import torchvision


def parse_dims(s):
    return [int(v) for v in s.split("x")]


def build(op, shape, dev):
    """A zero-argument callable running `op` at `shape`, plus its flops and bytes."""
    g = torch.Generator(device="cpu").manual_seed(0)

    def rnd(*dims):
        return (torch.rand(*dims, generator=g) * 2 - 1).to(dev)

    if op == "conv/forward":
        m = re.fullmatch(r"(\d+)x\d+ (\S+) -> (\d+)", shape)
        k = int(m.group(1))
        n, c, h, w = parse_dims(m.group(2))
        co = int(m.group(3))
        x, wt, b = rnd(n, c, h, w), rnd(co, c, k, k), rnd(co)
        flops = 2.0 * n * co * h * w * c * k * k
        return (lambda: F.relu(F.conv2d(x, wt, b, padding=k // 2))), flops, 4.0 * (
            x.numel() + n * co * h * w + wt.numel())
    if op in ("conv/dgrad", "conv/dgrad_forward", "conv/wgrad"):
        # The gradients of a conv at its forward shape: dx from dy and the weight, dw
        # from x and dy (torch.nn.grad, the kernels autograd runs).
        m = re.fullmatch(r"(\d+)x\d+ (\S+) -> (\d+)", shape)
        k = int(m.group(1))
        n, c, h, w = parse_dims(m.group(2))
        co = int(m.group(3))
        x, wt, dy = rnd(n, c, h, w), rnd(co, c, k, k), rnd(n, co, h, w)
        flops = 2.0 * n * co * h * w * c * k * k
        nbytes = 4.0 * (x.numel() + dy.numel() + wt.numel())
        if op == "conv/wgrad":
            return (lambda: torch.nn.grad.conv2d_weight(x, wt.shape, dy, padding=k // 2)), \
                flops, nbytes
        return (lambda: torch.nn.grad.conv2d_input(x.shape, wt, dy, padding=k // 2)), \
            flops, nbytes
    if op == "linear/forward":
        m = re.fullmatch(r"(\d+)x(\d+) -> (\d+)", shape)
        mm, k, n = (int(v) for v in m.groups())
        x, wt, b = rnd(mm, k), rnd(n, k), rnd(n)
        return (lambda: F.relu(F.linear(x, wt, b))), 2.0 * mm * k * n, 4.0 * (
            mm * k + k * n + mm * n)
    if op == "pool/forward":
        x = rnd(*parse_dims(shape))
        return (lambda: F.max_pool2d(x, 2)), 0.0, 4.0 * x.numel() * 1.25
    if op == "batchnorm/affine":
        x = rnd(*parse_dims(shape))
        c = x.shape[1]
        mean, var = torch.zeros(c, device=dev), torch.ones(c, device=dev)
        gamma, beta = rnd(c), rnd(c)
        return (lambda: F.relu(F.batch_norm(x, mean, var, gamma, beta, False))), 0.0, \
            8.0 * x.numel()
    if op == "lrn/forward":
        x = rnd(*parse_dims(shape))
        return (lambda: F.local_response_norm(x, 5, 1e-4, 0.75, 2.0)), 0.0, 8.0 * x.numel()
    if op == "avgpool/forward":
        m = re.fullmatch(r"(\S+) -> (\d+)x(\d+)", shape)
        x = rnd(*parse_dims(m.group(1)))
        out = (int(m.group(2)), int(m.group(3)))
        n, c = x.shape[:2]
        return (lambda: F.adaptive_avg_pool2d(x, out)), 0.0, 4.0 * (
            x.numel() + n * c * out[0] * out[1])
    if op == "im2col/forward":
        m = re.fullmatch(r"(\S+) window (\d+)x(\d+)", shape)
        x = rnd(*parse_dims(m.group(1)))
        kh, kw = int(m.group(2)), int(m.group(3))
        n, c, h, w = x.shape
        out = n * c * kh * kw * (h - kh + 1) * (w - kw + 1)
        return (lambda: F.unfold(x, (kh, kw))), 0.0, 8.0 * out
    if op == "softmax/forward":
        x = rnd(*parse_dims(shape))
        return (lambda: F.softmax(x, dim=1)), 0.0, 8.0 * x.numel()
    return None


def timed(fn, runs, dev, grad=False):
    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
    with torch.set_grad_enabled(grad):
        fn()
        sync()
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            fn()
            sync()
            times.append(time.perf_counter() - t)
    return times


def time_network(name, mode, batch, dims, prec, dev, runs):
    """The median seconds of one inference pass or training step of torchvision's `name`
    in precision `prec` (fp32, tf32 or amp-fp16), and the sorted times of the runs."""
    if dev == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = prec == "tf32"
        torch.backends.cudnn.allow_tf32 = prec == "tf32"
    amp = prec == "amp-fp16"
    fmt = torch.channels_last if amp else torch.contiguous_format
    net = getattr(torchvision.models, name)(weights=None).to(dev, memory_format=fmt)
    x = torch.rand(batch, *dims).to(dev).contiguous(memory_format=fmt)
    net_runs = runs if dev == "cuda" else max(1, min(runs, 3))

    def forward():
        with torch.autocast(device_type=dev, dtype=torch.float16, enabled=amp):
            return net(x)

    if mode == "training":
        # As the engine's step: forward with dropout, cross-entropy, backward, SGD with
        # momentum; in amp-fp16 with a GradScaler, as AMP training runs.
        net.train()
        labels = torch.arange(batch, device=dev) % 1000
        opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
        scaler = torch.amp.GradScaler(dev, enabled=amp)

        def step():
            opt.zero_grad(set_to_none=False)
            scaler.scale(F.cross_entropy(forward(), labels)).backward()
            scaler.step(opt)
            scaler.update()

        times = sorted(timed(step, net_runs, dev, grad=True))
    else:
        net.eval()
        times = sorted(timed(forward, net_runs, dev))
    return statistics.median(times), times


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes-from", required=True, help="a `vgg bench --json` report")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--threads", type=int, help="torch.set_num_threads [default: torch's]")
    ap.add_argument("--tf32", action="store_true",
                    help="on CUDA, let cuDNN/cuBLAS use TF32 [default: true f32]")
    ap.add_argument("-o", "--out", required=True)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = args.device
    if dev == "cuda" and not torch.cuda.is_available():
        ap.error("CUDA is not available to this PyTorch")
    notes = []
    if dev == "cuda":
        # The engine computes in f32; cuDNN and cuBLAS would otherwise round operands to
        # TF32 on Ampere and later. Autotuning picks cuDNN's fastest algorithm per shape.
        torch.backends.cuda.matmul.allow_tf32 = args.tf32
        torch.backends.cudnn.allow_tf32 = args.tf32
        torch.backends.cudnn.benchmark = True
        notes.append(f"cudnn.benchmark on, TF32 {'allowed' if args.tf32 else 'off (true f32)'}")
    src = json.load(open(args.shapes_from))

    kernels = []
    for k in src["kernels"]:
        if k["precision"] != "f32" or not k["is_default"]:
            continue
        made = build(k["op"], k["shape"], dev)
        if made is None:
            continue
        fn, flops, nbytes = made
        times = sorted(timed(fn, args.runs, dev))
        med = statistics.median(times)
        kernels.append({
            "op": k["op"], "layers": k["layers"], "shape": k["shape"], "variant": "torch",
            "precision": "f32", "median_ms": med * 1e3, "min_ms": times[0] * 1e3,
            "max_ms": times[-1] * 1e3, "runs": len(times), "clock": "wall", "flops": flops,
            "bytes": nbytes, "gflops": flops / med / 1e9 if flops else None,
            "gbytes_per_s": nbytes / med / 1e9, "fraction_of_peak": None,
            "cpu_reference_ms": None, "speedup_vs_cpu": None, "is_default": True,
            "tuned": False,
        })
        print(f"{k['op']:<17} {k['shape']:<32} {med * 1e3:10.3f} ms")

    networks = []
    seen = set()
    precisions = ["fp32", "tf32", "amp-fp16"] if dev == "cuda" else ["fp32"]
    for n in src["networks"]:
        name, batch = n["model"], n["batch"]
        mode = n.get("mode", "inference")
        if not hasattr(torchvision.models, name) or (name, mode, batch, n["input"]) in seen:
            continue
        seen.add((name, mode, batch, n["input"]))
        c, h, w = parse_dims(n["input"])
        for prec in precisions:
            med, times = time_network(name, mode, batch, (c, h, w), prec, dev, args.runs)
            networks.append({"model": name, "mode": mode, "batch": batch,
                             "input": n["input"], "precision": prec,
                             "ms_per_batch": med * 1e3, "images_per_second": batch / med,
                             "runs": len(times), "min_ms": times[0] * 1e3,
                             "max_ms": times[-1] * 1e3})
            print(f"{name} {mode} {prec} batch {batch}: {med * 1e3:.1f} ms, "
                  f"{batch / med:.2f} images/s")
    if dev == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = args.tf32
        torch.backends.cudnn.allow_tf32 = args.tf32

    if dev == "cuda":
        name = f"PyTorch {torch.__version__} CUDA on {torch.cuda.get_device_name()}"
    else:
        name = f"PyTorch {torch.__version__} CPU ({torch.get_num_threads()} threads)"
    report = {
        "schema": "vgg-bench/1", "tool": "pytorch",
        "adapter": {"name": name, "backend": dev, "device_type": "Cpu" if dev == "cpu" else
                    "DiscreteGpu", "driver": f"torch {torch.__version__}"},
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"),
        "git_commit": "n/a", "model": src["model"], "input": src["input"],
        "batches": src["batches"], "quick": src["quick"], "peak": None, "kernels": kernels,
        "networks": networks,
        "notes": [f"shapes from {args.shapes_from}; wall clock, median of {args.runs}"] + notes,
    }
    with open(args.out, "w") as f:
        json.dump(report, f, indent=1)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
