"""Imported first by every stage script: its CPU kernels pinned (see vertiflow.kernels).

The import is the switch, as each library reads its variable when it loads: a stage
script's first line, before numpy, torch or scikit-learn are imported.
"""

from vertiflow.kernels import pin

pin()
