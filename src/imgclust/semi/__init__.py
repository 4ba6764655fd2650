"""Semi-supervised work: representatives to label, label propagation, clustering as a
preprocessing step (:class:`ClusterDistances`)."""
