"""Face folders in the CASIA-WebFace layout ``root/<identity>/<image>``, and subset selection.

:class:`FaceFolder` only lists and selects files; decoding and alignment happen in
:mod:`sphereviz.data.prepare`, which caches the result.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sphereviz.data.align import IMAGE_EXTENSIONS

# The three CASIA-WebFace identities that also appear in LFW; the official SphereFace training
# list drops them (10,575 → 10,572 classes) so that LFW stays an open-set test.
CASIA_LFW_OVERLAP = ("0166921", "1056413", "1193098")


@dataclass(frozen=True)
class FaceFile:
    """One image of the selection: its path relative to the root, and its file stamp."""

    relative_path: str
    size: int
    mtime_ns: int


@dataclass
class SelectedFaces:
    """What every face source form shares: its root, the selection options, the subset
    selection (steps 1–6 of :class:`FaceFolder`) and the attributes the cache builder reads.

    A form lists its images as ``{identity: [item, …]}`` (items in their stored order) and
    hands the listing to :meth:`_select`, so every form selects alike.
    """

    root: str | os.PathLike
    identities: Sequence[str] | None = None
    top_k_identities: int | None = None
    min_images_per_identity: int = 1
    max_images_per_identity: int | None = None
    exclude: Sequence[str] = CASIA_LFW_OVERLAP
    seed: int = 0
    identity_names: list[str] = field(init=False)
    files: list[FaceFile] = field(init=False)
    labels: np.ndarray = field(init=False)
    empty_identities: list[str] = field(init=False)
    excluded_identities: list[str] = field(init=False)

    def _validate_selection(self) -> None:
        """Raise ``ValueError`` for selection options of the wrong type or range."""
        if isinstance(self.identities, str):
            raise ValueError(
                f"identities must be a list of names, got the string {self.identities!r}"
            )
        for name, value, lowest in (
            ("top_k_identities", self.top_k_identities, 1),
            ("min_images_per_identity", self.min_images_per_identity, 1),
            ("max_images_per_identity", self.max_images_per_identity, 1),
        ):
            if value is not None and (not isinstance(value, int | np.integer) or value < lowest):
                raise ValueError(f"{name} must be an integer >= {lowest} or None, got {value!r}")

    def _select(self, listing: dict[str, list], where: str, what: str) -> list:
        """Steps 1–6 of :class:`FaceFolder` on ``{identity: [item, …]}``: set
        ``identity_names``, ``labels``, ``empty_identities`` and ``excluded_identities``, and
        return the kept items (identity-major). ``where`` and ``what`` only word the errors.
        """
        empty = sorted(name for name, items in listing.items() if not items)
        listing = {name: items for name, items in listing.items() if items}
        excluded = sorted(set(self.exclude) & set(listing))
        for name in excluded:
            del listing[name]
        if self.identities is not None:
            wanted = list(dict.fromkeys(self.identities))
            missing = [name for name in wanted if name not in listing]
            if missing:
                raise ValueError(
                    f"identities not found (or empty, or excluded) in {where}: "
                    f"{', '.join(missing[:10])}{' …' if len(missing) > 10 else ''}; "
                    "check the names against the identity names there"
                )
            listing = {name: listing[name] for name in wanted}
        listing = {
            name: items
            for name, items in listing.items()
            if len(items) >= self.min_images_per_identity
        }
        if self.top_k_identities is not None:
            by_count = sorted(listing, key=lambda name: (-len(listing[name]), name))
            listing = {name: listing[name] for name in by_count[: self.top_k_identities]}
        if not listing:
            raise ValueError(
                f"the selection in {where} is empty: no {what} is left after the exclusions and "
                "filters; check root and the selection options"
            )
        rng = np.random.default_rng(self.seed)
        names = sorted(listing)
        kept: list = []
        labels: list[int] = []
        most = self.max_images_per_identity
        for label, name in enumerate(names):
            items = listing[name]
            if most is not None and len(items) > most:
                keep = rng.choice(len(items), size=most, replace=False)
                items = [items[i] for i in np.sort(keep)]
            kept.extend(items)
            labels.extend([label] * len(items))
        self.identity_names = names
        self.labels = np.asarray(labels, dtype=np.int64)
        self.empty_identities = empty
        self.excluded_identities = excluded
        return kept

    def __len__(self) -> int:
        return len(self.files)

    @property
    def num_identities(self) -> int:
        return len(self.identity_names)

    @property
    def relative_paths(self) -> list[str]:
        return [face.relative_path for face in self.files]

    def parameters(self) -> dict:
        """The selection options, as JSON-ready values (the same keys for every source form)."""
        return {
            "identities": None if self.identities is None else list(self.identities),
            "top_k_identities": self.top_k_identities,
            "min_images_per_identity": self.min_images_per_identity,
            "max_images_per_identity": self.max_images_per_identity,
            "exclude": sorted(self.exclude),
            "seed": self.seed,
        }


@dataclass
class FaceFolder(SelectedFaces):
    """The images of ``root/<identity>/<image>`` (jpg, jpeg, png, pgm), with a subset selection.

    Selection, in this order:

    1. identity folders with no image are skipped and counted (``empty_identities``);
    2. ``exclude`` (default: :data:`CASIA_LFW_OVERLAP`) drops those identities when present;
    3. ``identities=[...]`` keeps only those (each must exist);
    4. ``min_images_per_identity`` drops identities with fewer images;
    5. ``top_k_identities`` keeps the ``k`` identities with the most images (ties: by name), as
       in the paper's toy experiment (the 6 CASIA identities with the most images);
    6. ``max_images_per_identity`` keeps a random subset of that many images of each identity,
       drawn with ``numpy.random.default_rng(seed)`` (files stay in sorted order).

    Labels are the positions of the selected identities in sorted name order.

    Symbolic links to folders outside the root are followed once; a link back into the root
    (another identity under a second name, or the root itself) and a link loop are skipped
    and listed in ``skipped_links`` (``{"path", "reason"}``), as are looping image links.

    Attributes (after construction): ``identity_names``, ``files`` (:class:`FaceFile`,
    sorted by identity then name), ``labels`` (``int64``), ``empty_identities``,
    ``excluded_identities``.
    """

    skipped_links: list[dict] = field(init=False)

    form = "folder"

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        if not self.root.is_dir():
            raise ValueError(
                f"face root {self.root} is not a directory; expected root/<identity>/<image>"
            )
        self._validate_selection()
        listing, self.skipped_links = _list_identities(self.root)
        self.files = self._select(
            listing,
            where=str(self.root),
            what=f"identity folder with at least {self.min_images_per_identity} images of "
            f"type {', '.join(IMAGE_EXTENSIONS)}",
        )

    def path(self, index: int) -> Path:
        """Absolute path of image ``index``."""
        return self.root / self.files[index].relative_path


def _list_identities(root: Path) -> tuple[dict[str, list[FaceFile]], list[dict]]:
    """``{identity: [FaceFile, …] sorted by name}`` for every sub-folder of ``root``, and the
    links skipped (``{"path", "reason"}``: loops, links back into the root)."""
    listing: dict[str, list[FaceFile]] = {}
    skipped: list[dict] = []
    real_root = os.path.realpath(root)
    identity_dirs = []
    with os.scandir(root) as entries:
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                is_dir = entry.is_dir()
            except OSError as error:  # ELOOP: a link to itself or in a circle
                skipped.append({"path": entry.name, "reason": _link_problem(error)})
                continue
            if not is_dir:
                continue
            if entry.is_symlink():
                target = os.path.realpath(entry.path)
                inside = os.path.commonpath([target, real_root]) in (real_root, target)
                if inside:  # the root, an ancestor of it, or another identity folder
                    skipped.append(
                        {"path": entry.name, "reason": f"a link back into the face root ({target})"}
                    )
                    continue
            identity_dirs.append(entry.name)
    for name in sorted(identity_dirs):
        files = []
        with os.scandir(root / name) as entries:
            for entry in entries:
                if not entry.name.lower().endswith(IMAGE_EXTENSIONS):
                    continue
                try:
                    if not entry.is_file():
                        continue
                    stat = entry.stat()
                except OSError as error:
                    skipped.append({"path": f"{name}/{entry.name}", "reason": _link_problem(error)})
                    continue
                files.append(FaceFile(f"{name}/{entry.name}", stat.st_size, stat.st_mtime_ns))
        listing[name] = sorted(files, key=lambda face: face.relative_path)
    return listing, sorted(skipped, key=lambda item: item["path"])


def _link_problem(error: OSError) -> str:
    if error.errno == errno.ELOOP:
        return "a symbolic link loop"
    return f"cannot be read ({error.strerror or error})"
