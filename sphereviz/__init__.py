"""sphereviz: teach and analyse SphereFace (A-Softmax) and the angular-margin losses around it.

Layers (a lower one never imports a higher one):
math (margins, losses, geometry, bounds) → data → learning (models, train, evaluate)
→ presentation (style, plots (a package by topic; plots.interactive3d: plotly), widgets, figures)
→ entry points (cli, demo).
"""

import os

# PyTorch's OpenMP runtime (libgomp) spins at every barrier by default; when more threads want
# to run than there are cores (a 2-core laptop running a notebook, a browser and a training),
# the spinning thread takes the core from the one it waits for. Sleeping instead made loaded
# runs 1.5-10x faster and idle ones no slower (benchmarks/README.md). It only takes effect when
# set before torch is first imported, and a value the user set wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
