"""Fashion-MNIST (Xiao et al. 2017): 60k/10k Zalando article images, 28×28 grey, same format as MNIST."""
from __future__ import annotations

from mnistlab.data import DATASETS
from mnistlab.data.sets._idxsets import IDX_NAMES, build, idx_sources
from mnistlab.data.sources import RemoteFile

IDX_SHA256 = ("b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
              "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
              "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
              "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05")
SYSTEM_DIRS = ["/usr/share/datasets/fashion-mnist"]  # Debian package dataset-fashion-mnist
MIRRORS = ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"]
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


@DATASETS.register("fashion-mnist")
def fashion_mnist():
    files = [RemoteFile(n, s) for n, s in zip(IDX_NAMES, IDX_SHA256)]
    return build("fashion-mnist", idx_sources(files, system_dirs=SYSTEM_DIRS, mirrors=MIRRORS), CLASSES,
                 hflip_safe=True, aligned=True)
