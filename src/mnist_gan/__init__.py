"""mnist_gan: the library behind the DVC stages in stages/ (data, models, training, metrics, report)."""
