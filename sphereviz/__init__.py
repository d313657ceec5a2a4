"""sphereviz: teach and analyse SphereFace (A-Softmax) and the angular-margin losses around it.

Layers (a lower one never imports a higher one):
math (margins, losses, geometry, bounds) → data → learning (models, train, evaluate)
→ presentation (style, plots, plots3d, widgets, figures) → entry points (cli, demo).
"""

__version__ = "0.1.0"
