"""Clustering engines shared by every job: weighted k-means and choosing K.

:mod:`imgclust.cluster.engine` holds seeding, Lloyd and restarts on NumPy and the loops of
:mod:`imgclust.cluster._loops` (compiled ahead of time, numba's JIT for large inputs);
:class:`imgclust.cluster.kmeans.KMeans` is the scikit-learn estimator around them.
"""
