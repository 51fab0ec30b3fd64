"""mnistlab: few-label learning, generation and study of MNIST-family images on a CPU, offline and reproducibly."""

__version__ = "0.1.0"
