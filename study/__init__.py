"""The numerics study (``make study``): does LightNorm's arithmetic keep training accuracy?

Parts, each a module with a ``run_*`` function writing CSV/JSON/PNG into one output folder:

* :mod:`~lightnorm.study.sigma`: bias and spread of the range estimate of sigma;
* :mod:`~lightnorm.study.bnerror`: error of the bit-exact BN unit (golden model) against the
  float64 reference, per preset and over a format sweep;
* :mod:`~lightnorm.study.train`: a small NumPy CNN (:mod:`~lightnorm.study.nn`) trained on
  scikit-learn's bundled digits with its BN layers in float32 or in the golden model.

``python -m lightnorm.study --out build/study`` runs everything; docs/study.md summarizes it.
"""

__all__ = ["sigma", "bnerror", "train", "nn"]
