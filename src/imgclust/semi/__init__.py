"""Semi-supervised work: the images worth labelling (:mod:`~imgclust.semi.representatives`),
the labelling page (:mod:`~imgclust.semi.label_server`), label propagation and training
(:mod:`~imgclust.semi.propagate`), and the seeds' experiments, clustering as a preprocessing
step included (:mod:`~imgclust.semi.experiments`)."""
