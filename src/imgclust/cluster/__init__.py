"""Clustering engines shared by every job: weighted k-means and choosing K."""

from imgclust.cluster.kmeans import KMeans, k_means, kmeans_plusplus

__all__ = ["KMeans", "k_means", "kmeans_plusplus"]
