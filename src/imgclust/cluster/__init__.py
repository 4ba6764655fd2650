"""Clustering engines shared by every job: weighted k-means and choosing K.

:mod:`imgclust.cluster.engine` holds the loops and needs only NumPy and numba;
:class:`imgclust.cluster.kmeans.KMeans` is the scikit-learn estimator around them.
"""
