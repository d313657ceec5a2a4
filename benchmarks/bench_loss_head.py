"""Speed of the classification head: forward + backward of each loss at CASIA-WebFace size.

Compares, at batch 256, d = 512, 10,572 classes (the official SphereFace setting):

- floor: ``nn.Linear`` + ``F.cross_entropy`` (the cheapest head there is);
- naive A-Softmax: normalised W copied, acos of every cosine, ψ on all C columns, a one-hot
  float mask to mix target and other logits (what many ports do);
- every loss of ``sphereviz.losses`` (one matmul, margin on the N target entries only).

Target (issue 8): ASoftmaxLoss ≤ 1.3 × floor (the other losses are shown for comparison).

``run(embedding_size=16, num_classes=16, targeted=False)`` is the same comparison with a tiny
head, where the arithmetic vanishes and each step costs what its operator dispatches cost on
the host: the regime of a GPU, where the head's 10,572 columns take microseconds and every
small operation is a kernel launch. It is the CPU's stand-in for the CUDA ratio when no GPU
is at hand.

Rows in the schema of ``common``: median ms over ``repeats`` interleaved steps after two
warm-up steps each, ratio to the floor; ``details`` add the median CPU ms of this process and
its ratio to the floor's, steadier than wall time when other work shares the cores.
Run: ``python benchmarks/bench_loss_head.py``.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from common import Target, make_row, median, print_rows, time_calls
from torch import nn

from sphereviz.losses import LOSS_NAMES, make_loss

BATCH_SIZE = 256
EMBEDDING_SIZE = 512
NUM_CLASSES = 10_572
FLOOR = "floor: nn.Linear + cross_entropy"
TARGET = Target("ratio", "<=", 1.3)
TARGETED = "sphereviz a-softmax"
FLOOR_COMPILED = "floor, torch.compile"
TARGETED_COMPILED = "sphereviz a-softmax, torch.compile"


def naive_a_softmax_head(
    x: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor, m: int = 4, lam: float = 5.0
) -> torch.Tensor:
    """A-Softmax written the slow way: margin on every class, acos per element, one-hot mask."""
    unit_weights = F.normalize(weights, dim=0)
    norms = x.norm(dim=1, keepdim=True)
    cos_theta = (F.normalize(x, dim=1) @ unit_weights).clamp(-1, 1)
    theta = torch.acos(cos_theta)
    k = torch.floor(m * theta / math.pi)
    psi = (-1.0) ** k * torch.cos(m * theta) - 2 * k
    one_hot = torch.zeros_like(cos_theta).scatter_(1, labels.unsqueeze(1), 1.0)
    target = (lam * cos_theta + psi) / (1 + lam)
    logits = norms * (one_hot * target + (1 - one_hot) * cos_theta)
    return F.cross_entropy(logits, labels)


def _fwd_bwd(loss_fn: Callable[[], torch.Tensor], params: list[torch.Tensor]) -> Callable:
    def step():
        for param in params:
            param.grad = None
        loss_fn().backward()

    return step


def run(
    repeats: int = 5,
    device: str = "cpu",
    batch_size: int = BATCH_SIZE,
    embedding_size: int = EMBEDDING_SIZE,
    num_classes: int = NUM_CLASSES,
    seed: int = 0,
    targeted: bool = True,
    compiled: bool = False,
    threads: int | None = None,
) -> list[dict]:
    """One row per head: median fwd+bwd milliseconds and the ratio to the floor.

    ``targeted=False`` leaves the ≤ 1.3× target off the rows (for the dispatch-bound run).
    ``compiled=True`` adds the floor and A-Softmax under ``torch.compile`` (compilation in the
    warm-up, not timed): on a GPU, where the eager head is launch-bound, this is the fix.
    ``threads`` sets torch's CPU threads for this run (restored after); the dispatch-bound run
    uses 1, since waking a second thread for a tiny operation costs more than the operation.
    """
    previous_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _run(
            repeats, device, batch_size, embedding_size, num_classes, seed, targeted, compiled
        )
    finally:
        torch.set_num_threads(previous_threads)


def _run(repeats, device, batch_size, embedding_size, num_classes, seed, targeted, compiled):
    torch.manual_seed(seed)
    device = torch.device(device)
    x = torch.randn(batch_size, embedding_size, device=device, requires_grad=True)
    labels = torch.randint(0, num_classes, (batch_size,), device=device)
    what = f"loss head fwd+bwd N={batch_size} d={embedding_size} C={num_classes} ({device.type})"

    linear = nn.Linear(embedding_size, num_classes).to(device)
    variants: dict[str, Callable] = {
        FLOOR: _fwd_bwd(lambda: F.cross_entropy(linear(x), labels), [x, *linear.parameters()])
    }
    naive_weights = torch.randn(embedding_size, num_classes, device=device, requires_grad=True)
    variants["naive A-Softmax (all columns, acos, one-hot)"] = _fwd_bwd(
        lambda: naive_a_softmax_head(x, labels, naive_weights), [x, naive_weights]
    )
    for loss_name in LOSS_NAMES:
        loss = make_loss(loss_name, num_classes, embedding_size).to(device)
        # as the trainer runs it: labels checked once with the data, not in every step (on a
        # GPU the per-step check is a host sync that would serialise host and device)
        loss.check_label_range = False
        variants[f"sphereviz {loss_name}"] = _fwd_bwd(
            lambda loss=loss: loss(x, labels), [x, *loss.parameters()]
        )
    if compiled:
        compiled_floor = torch.compile(lambda: F.cross_entropy(linear(x), labels))
        variants[FLOOR_COMPILED] = _fwd_bwd(compiled_floor, [x, *linear.parameters()])
        a_softmax = make_loss("a-softmax", num_classes, embedding_size).to(device)
        a_softmax.check_label_range = False
        compiled_loss = torch.compile(a_softmax)
        variants[TARGETED_COMPILED] = _fwd_bwd(
            lambda: compiled_loss(x, labels), [x, *a_softmax.parameters()]
        )

    synchronize = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else None
    cpu: dict[str, list[float]] = {}
    seconds = time_calls(variants, repeats, warmup=2, synchronize=synchronize, cpu_seconds=cpu)
    milliseconds = {variant: [1000 * s for s in values] for variant, values in seconds.items()}
    floor = median(milliseconds[FLOOR])
    cpu_floor = median(cpu[FLOOR])
    return [
        make_row(
            1,
            what,
            variant,
            samples,
            "ms",
            baseline=floor,
            baseline_variant=FLOOR,
            targets=[TARGET] if targeted and variant in (TARGETED, TARGETED_COMPILED) else (),
            details={
                "median_cpu_ms": round(1000 * median(cpu[variant]), 2),
                "cpu_ratio_to_floor": round(median(cpu[variant]) / cpu_floor, 3),
            },
        )
        for variant, samples in milliseconds.items()
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    parser.add_argument("--compile", action="store_true", help="add torch.compile variants")
    args = parser.parse_args(argv)
    rows = run(repeats=args.repeats, device=args.device, compiled=args.compile)
    print_rows(rows, as_json=args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
