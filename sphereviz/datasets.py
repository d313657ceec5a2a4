"""From a config to its data: the train and test sets a run trains and is tested on.

:func:`load_datasets` reads ``config.dataset`` (MNIST, Fashion-MNIST or a face cache made by
``sphereviz prepare-faces``), keeps ``config.classes`` (relabelled 0…k−1,
:func:`select_classes`), splits a face cache into stratified, seeded train and test parts
(:func:`split_faces`) and cuts each to ``max_train_samples``/``max_test_samples``. The trainer,
the open-set split and the run folders get their data here; no torch is imported.
"""

from __future__ import annotations

import shlex

import numpy as np

from sphereviz.config import TrainConfig

__all__ = ["load_datasets", "select_classes", "split_faces"]


def load_datasets(config: TrainConfig):
    """``(train, test)`` ArrayDatasets of uint8 images for ``config.dataset``."""
    from sphereviz.data import load_face_cache, load_fashion_mnist, load_mnist
    from sphereviz.data.arrays import ArrayDataset

    if config.dataset == "mnist":
        train_set, test_set = load_mnist(config.data_root)
    elif config.dataset == "fashion-mnist":
        train_set, test_set = load_fashion_mnist(config.data_root)
    else:
        train_set, test_set = split_faces(load_face_cache(config.faces_cache), config)

    def first(dataset: ArrayDataset, count: int | None) -> ArrayDataset:
        if count is None or count >= len(dataset):
            return dataset
        images, labels = dataset.images[:count], dataset.labels[:count]
        return ArrayDataset(images, labels, dataset.class_names, f"{dataset.source}[:{count}]")

    if config.classes is not None:
        train_set, test_set = (select_classes(d, config.classes) for d in (train_set, test_set))
    return first(train_set, config.max_train_samples), first(test_set, config.max_test_samples)


def select_classes(dataset, classes: tuple[int, ...]):
    """The images of ``classes`` only, relabelled 0…k−1 in the order of ``classes``."""
    from sphereviz.data.arrays import ArrayDataset

    missing = [c for c in classes if c >= dataset.num_classes]
    if missing:
        raise ValueError(
            f"classes {missing} do not exist in {dataset.source} (labels 0…"
            f"{dataset.num_classes - 1})"
        )
    relabel = np.full(dataset.num_classes, -1, dtype=np.int64)
    relabel[list(classes)] = np.arange(len(classes))
    keep = np.flatnonzero(relabel[dataset.labels] >= 0)
    names = [dataset.class_names[c] for c in classes]
    return ArrayDataset(dataset.images[keep], relabel[dataset.labels[keep]], names,
                        f"{dataset.source}, classes {list(classes)}")  # fmt: skip


def split_faces(cache, config: TrainConfig):
    """Stratified, seeded train/test split of a face cache (closed-set accuracy)."""
    from sklearn.model_selection import train_test_split

    from sphereviz.data.arrays import ArrayDataset

    counts = cache.class_counts()
    if counts.min() < 2:
        raise ValueError(
            f"{cache.directory}: {int(np.sum(counts < 2))} identities have fewer than 2 images, "
            "so no stratified train/test split exists; rebuild the cache with "
            f"`sphereviz prepare-faces --root {shlex.quote(cache.manifest['inputs']['root'])} "
            f"--out {shlex.quote(str(cache.directory))} --min-images 2` (or more; and its other "
            "options)"
        )
    try:
        train_index, test_index = train_test_split(
            np.arange(len(cache)),
            test_size=config.test_fraction,
            stratify=cache.labels,
            random_state=config.seed,
        )
    except ValueError as error:
        raise ValueError(
            f"{cache.directory}: cannot split {len(cache)} faces of {cache.num_classes} "
            f"identities with test_fraction={config.test_fraction} ({error}); raise "
            "test_fraction"
        ) from error
    train_index, test_index = np.sort(train_index), np.sort(test_index)
    return (
        ArrayDataset(cache.images[train_index], cache.labels[train_index], cache.class_names,
                     f"{cache.source}, train split"),
        ArrayDataset(cache.images[test_index], cache.labels[test_index], cache.class_names,
                     f"{cache.source}, test split"),
    )  # fmt: skip
