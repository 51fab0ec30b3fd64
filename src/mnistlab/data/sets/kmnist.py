"""Kuzushiji-MNIST (Clanuwat et al. 2018): 60k/10k cursive Japanese kana, 28×28 grey, a drop-in for MNIST.

Download-only (no Debian or PyPI copy): the four IDX files from the official CODH mirror, each checked against a pinned
SHA-256 (the same values are pinned independently by TensorFlow Datasets' `url_checksums/kmnist.txt`). CODH also
publishes `.npz` copies, but no independently pinned checksum for them was available, so the IDX files are used. A
copy of the four files placed in `$MNISTLAB_DATA/kmnist/` is used (and checked) before any download.
"""
from __future__ import annotations

from mnistlab.data import DATASETS
from mnistlab.data.sets._idxsets import IDX_NAMES, build, idx_sources
from mnistlab.data.sources import RemoteFile, data_home

IDX_SHA256 = ("51467d22d8cc72929e2a028a0428f2086b092bb31cfb79c69cc0a90ce135fde4",  # 18 165 135 bytes
              "e38f9ebcd0f3ebcdec7fc8eabdcdaef93bb0df8ea12bee65224341c8183d8e17",  # 29 497
              "edd7a857845ad6bb1d0ba43fe7e794d164fe2dce499a1694695a792adfac43c5",  # 3 041 136
              "20bb9a0ef54c7db3efc55a92eef5582c109615df22683c380526788f98e42a1c")  # 5 120
MIRRORS = ["https://codh.rois.ac.jp/kmnist/dataset/kmnist/", "http://codh.rois.ac.jp/kmnist/dataset/kmnist/"]
SIZES = (60000, 10000)
# one hiragana per row of the syllabary (kmnist_classmap.csv): お き す つ な は ま や れ を
CLASSES = ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo")


@DATASETS.register("kmnist")
def kmnist():
    files = [RemoteFile(n, s) for n, s in zip(IDX_NAMES, IDX_SHA256)]
    local = [str(data_home() / "kmnist")]
    return build("kmnist", idx_sources(files, system_dirs=local, mirrors=MIRRORS), CLASSES, hflip_safe=False,
                 sizes=SIZES)
