"""Training throughput on this machine: images/s per model size, fp32 or bf16, eager or compiled.

    python -m train.lab.throughput [--configs small,medium,default] [--amp off,bf16] [--compile off,on]
                               [--threads 2] [--seconds 30]

One training step is what ``python -m train`` runs (forward, R + λD, backward, clip, Adam) on a batch
of random 128² crops at random qualities.  Reported per setting: images/s and Mpixel/s (median
over ``--seconds`` of timed steps after warm-up), the convolution FLOPs of one step (forward +
backward, counted by ``torch.utils.flop_counter``), the share of the step's time spent in convolution
kernels (``torch.profiler``, self time) and the fraction of this CPU's peak the convolutions reach:

    peak = cores × GHz × FLOP/cycle,  FLOP/cycle = 32 (fp32: two 256-bit FMA pipes) or
                                                   64 (bf16: AVX512_BF16 dot products)  on Zen 4

The peak is a property of this machine's cores (``--ghz``, ``--fp32-per-cycle``); the table says so.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from ..config import PRESETS
from ..objective import RateDistortion

CONV_OPS = ("convolution", "convolution_backward")


def _step(rd, opt, x, q):
    loss = rd(x, q).loss.mean()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(rd.parameters(), 1.0)
    opt.step()


def conv_flops(config: str, batch: int, patch: int, amp: bool) -> int:
    """Convolution FLOPs (forward and backward) of one training step."""
    from codec.networks.model import LicModel

    rd = RateDistortion(LicModel(PRESETS[config]()), torch.bfloat16 if amp else None)
    opt = torch.optim.Adam(rd.parameters(), lr=1e-4)
    x = torch.rand(batch, 3, patch, patch)
    q = torch.full((batch,), 4.0)
    with FlopCounterMode(display=False) as counter:
        _step(rd, opt, x, q)
    by_op = {str(k).split(".")[-1]: v for k, v in counter.get_flop_counts()["Global"].items()}
    return sum(v for k, v in by_op.items() if k in CONV_OPS)


def measure(config: str, amp: bool, compiled: bool, batch: int, patch: int, seconds: float) -> dict:
    from codec.networks.model import LicModel

    torch.manual_seed(0)
    model = LicModel(PRESETS[config]()).to(memory_format=torch.channels_last)
    rd = RateDistortion(model, torch.bfloat16 if amp else None)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    fn = torch.compile(rd) if compiled else rd
    gen = torch.Generator().manual_seed(0)

    def batch_():
        x = torch.rand(batch, 3, patch, patch, generator=gen).contiguous(memory_format=torch.channels_last)
        return x, 1 + 7 * torch.rand(batch, generator=gen)

    t0 = time.perf_counter()
    for _ in range(3):  # warm-up (and compilation)
        _step(fn, opt, *batch_())
    warm = time.perf_counter() - t0
    times = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        x, q = batch_()
        t = time.perf_counter()
        _step(fn, opt, x, q)
        times.append(time.perf_counter() - t)
    step = statistics.median(times)
    # Where the time goes: self time of convolution kernels (forward and backward) over a few steps.
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(3):
            _step(fn, opt, *batch_())
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    conv = sum(e.self_cpu_time_total for e in events if "conv" in e.key.lower())
    return {"step_s": step, "img_s": batch / step, "mpix_s": batch * patch * patch / step / 1e6,
            "warmup_s": warm, "steps": len(times), "conv_time_share": conv / max(total, 1e-9)}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m train.lab.throughput", description=__doc__.split("\n\n")[0])
    p.add_argument("--configs", default="small,medium,default")
    p.add_argument("--amp", default="off,bf16")
    p.add_argument("--compile", default="off")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--patch", type=int, default=128)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--ghz", type=float, default=2.6, help="core clock for the peak")
    p.add_argument("--fp32-per-cycle", type=int, default=32, help="fp32 FLOP/cycle/core (bf16: twice)")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    print("| config | amp | compile | img/s | Mpixel/s | conv GFLOP/step | conv share of step time | "
          "conv GFLOP/s | % of peak |\n|---|---|---|---|---|---|---|---|---|", flush=True)
    for config in a.configs.split(","):
        for amp in (v == "bf16" for v in a.amp.split(",")):
            conv = conv_flops(config, a.batch_size, a.patch, amp)
            for compiled in (v == "on" for v in a.compile.split(",")):
                r = measure(config, amp, compiled, a.batch_size, a.patch, a.seconds)
                peak = a.threads * a.ghz * 1e9 * a.fp32_per_cycle * (2 if amp else 1)
                rate = conv / (r["step_s"] * r["conv_time_share"])  # FLOP/s while convolving
                print(f"| {config} | {'bf16' if amp else 'fp32'} | {'on' if compiled else 'off'} | "
                      f"{r['img_s']:.1f} | {r['mpix_s']:.2f} | {conv / 1e9:.1f} | {r['conv_time_share']:.0%} | "
                      f"{rate / 1e9:.1f} | {rate / peak:.0%} |", flush=True)


if __name__ == "__main__":
    main()
