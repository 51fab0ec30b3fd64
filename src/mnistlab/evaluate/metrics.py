"""Classification metrics on arrays: accuracy, log-loss, confusion matrix, per-class report (scikit-learn)."""
from __future__ import annotations

import numpy as np
from sklearn.metrics import classification_report, confusion_matrix


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float((logits.argmax(1) == labels).mean()) if len(labels) else float("nan")


def class_shares(preds: np.ndarray, num_classes: int, prior: np.ndarray | None = None) -> np.ndarray:
    """(K,) each class's share of `preds` (N,) over its expected share (`prior`, default even): 1 = as often as
    expected, 0 = never predicted. Reads no label."""
    share = np.bincount(preds, minlength=num_classes)[:num_classes] / max(1, len(preds))
    expected = np.full(num_classes, 1 / num_classes) if prior is None else np.asarray(prior, float)
    with np.errstate(divide="ignore", invalid="ignore"):  # a class without labels is not expected: +inf, never least
        return np.where(expected > 0, share / np.where(expected > 0, expected, 1), np.inf)


def smallest_class_share(preds: np.ndarray, num_classes: int, prior: np.ndarray | None = None) -> float:
    """The least-predicted class's `class_shares`: a run that has merged a class into another shows it as a class
    almost nobody is given (benchmarks/notes/fewlabel-10-probes.md). nan without predictions."""
    return float(class_shares(preds, num_classes, prior).min()) if len(preds) else float("nan")


def nll(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean cross-entropy in nats."""
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-logp[np.arange(len(labels)), labels].mean())


def confusion(labels: np.ndarray, preds: np.ndarray, num_classes: int) -> np.ndarray:
    """(K, K) counts, rows = true class, columns = predicted class."""
    return confusion_matrix(labels, preds, labels=list(range(num_classes)))


def per_class_report(labels: np.ndarray, preds: np.ndarray, classes: tuple[str, ...] | list[str]) -> dict:
    """precision / recall / f1 / support per class + accuracy, macro and weighted averages."""
    return classification_report(labels, preds, labels=list(range(len(classes))), target_names=list(classes),
                                 output_dict=True, zero_division=0)


def most_confused(cm: np.ndarray, classes, k: int = 5) -> list[dict]:
    """The k largest off-diagonal cells: which true class goes to which predicted class, how often."""
    off = cm.copy()
    np.fill_diagonal(off, 0)
    flat = np.argsort(off, axis=None)[::-1][:k]
    return [{"true": classes[i], "pred": classes[j], "count": int(off[i, j])}
            for i, j in zip(*np.unravel_index(flat, off.shape)) if off[i, j] > 0]


def confused_pairs(cm: np.ndarray, classes, k: int = 5) -> list[dict]:
    """The k class pairs most often mistaken for each other, in either direction (Shirt ↔ T-shirt/top).

    Each entry: classes [a, b]; a_to_b = true a predicted b, b_to_a the reverse; count = their sum;
    rate = count / (true a + true b), the share of the pair's images that went to the other class of the pair.
    """
    both = cm + cm.T
    i, j = np.triu_indices(len(cm), 1)
    order = np.argsort(-both[i, j], kind="stable")[:k]
    support = cm.sum(axis=1)
    return [{"classes": [classes[a], classes[b]], "count": int(both[a, b]), "a_to_b": int(cm[a, b]),
             "b_to_a": int(cm[b, a]), "rate": round(float(both[a, b] / max(1, support[a] + support[b])), 4)}
            for a, b in zip(i[order], j[order]) if both[a, b] > 0]
