"""``sphereviz margin``: the margin that A-Softmax trains at a given λ, and its effective m.

For K classes whose weights are θ₁₂ apart (``geometry.annealed_margin``): how far a class's
region reaches toward its neighbour, the gap between the regions, the effective m (the real m
of pure A-Softmax that reaches as far) and the paper's criterion, max intra ≤ min inter.

    sphereviz margin --m 4 --lambda 5 --theta12 90 --json
    → reach 34.39°, gap 21.23°, effective m 1.617: the official floor λ = 5 trains m = 4 as
      m ≈ 1.6, and the criterion fails; with --lambda 0 the gap is 54° and m_eff = 4.
"""

from __future__ import annotations

import argparse
import math
import sys

from sphereviz import geometry
from sphereviz.fileio import print_json_summary
from sphereviz.validation import check_real

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sphereviz margin",
        description="Reach, gap, effective m and the paper's criterion of the margin a loss "
        "trains, for K classes whose weights are θ₁₂ apart, at annealing weight λ.",
    )
    parser.add_argument("--m", type=float, default=None, help="the margin (default: the loss's)")
    parser.add_argument(
        "--lambda",
        dest="annealing_lambda",
        type=float,
        default=0.0,
        help="annealing weight λ of A-/L-Softmax (0: the pure ψ; the official floor is 5)",
    )
    parser.add_argument(
        "--theta12",
        type=float,
        default=None,
        help="degrees between neighbouring class weights (default 90 for 2 classes, 360/K)",
    )
    parser.add_argument("--classes", type=int, default=2, help="number of classes K (default 2)")
    parser.add_argument("--loss", default="a-softmax", help="a-softmax (default), cosface, …")
    parser.add_argument(
        "--rule",
        choices=("psi", "boundary"),
        default=None,
        help="psi (integer m) or the paper's boundary rule mθ₁ < θ₂ (any m ≥ 1); default: psi "
        "for integer m, boundary otherwise",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON summary as the last line")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    margin = args.m
    if margin is not None and float(margin).is_integer():
        margin = int(margin)
    try:
        rule = args.rule or geometry.default_rule(args.loss, margin)
        theta12 = None
        if args.theta12 is not None:
            degrees = check_real(
                "--theta12",
                args.theta12,
                min=0,
                max=180,
                include_min=False,
                hint="the angle between two neighbouring weights, in degrees",
            )
            theta12 = math.radians(degrees)
        result = geometry.annealed_margin(
            margin, args.annealing_lambda, theta12, args.classes, args.loss, rule=rule
        )
    except (TypeError, ValueError) as error:
        print(f"sphereviz margin: error: {error}", file=sys.stderr)
        return 2
    summary = result.summary_degrees()
    holds = "holds" if result.criterion_holds else "fails"
    print(
        f"{summary['loss']} m={summary['m']:g} λ={result.annealing_lambda:g}, "
        f"{result.num_classes} classes {summary['theta12_deg']:g}° apart: reach "
        f"{summary['reach_deg']:.2f}°, gap {summary['gap_deg']:.2f}°, effective m "
        f"{result.effective_m:.3f}; max intra {summary['max_intra_deg']:.2f}° vs min inter "
        f"{summary['min_inter_deg']:.2f}°: the criterion {holds}"
        if summary["m"] is not None
        else f"{summary['loss']}: reach {summary['reach_deg']:.2f}°, gap {summary['gap_deg']:.2f}°"
    )
    if args.json:
        print_json_summary(summary)
    return 0
