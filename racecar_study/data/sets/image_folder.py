"""`image_folder:PATH`: one sub-folder per class of PNG/JPEG images, as torchvision's ImageFolder."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch

from .. import resample
from ..args import bool_arg, fraction_arg, size_arg
from ..base import DataError, make_splits
from ..registry import BuildContext, register_dataset
from ..split import stratified_split

EXTENSIONS = (".png", ".jpg", ".jpeg")
_GREY_MODES = ("1", "L", "LA", "I", "I;16", "F")


def _scan(path: str) -> tuple[Path, list[str], list[list[Path]]]:
    root = Path(path).expanduser().absolute()
    if not root.is_dir():
        raise DataError(f"image_folder: {root} is not a folder")
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise DataError(f"image_folder: {root} has no class sub-folders")
    files = []
    for c in classes:
        found = sorted(p for p in (root / c).rglob("*") if p.suffix.lower() in EXTENSIONS and p.is_file())
        if not found:
            raise DataError(f"image_folder: class folder {root / c} holds no {'/'.join(EXTENSIONS)} images")
        files.append(found)
    return root, classes, files


def _fingerprint(ctx: BuildContext, **options) -> str:
    """Digest of every image's path, size and mtime: editing the folder invalidates the cache."""
    root, _, files = _scan(ctx.path)
    stats = [
        [str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns] for group in files for p in group
    ]
    return hashlib.sha256(json.dumps([str(root), stats]).encode()).hexdigest()


def _open(path: Path):
    """The image at `path`, opened lazily (header read); a file PIL cannot read is a DataError."""
    from PIL import Image, UnidentifiedImageError

    try:
        return Image.open(path)
    except UnidentifiedImageError:
        raise DataError(f"image_folder: cannot read {path}: not an image PIL knows") from None
    except (OSError, Image.DecompressionBombError) as e:
        raise DataError(f"image_folder: cannot read {path}: {e}") from None


def _load(paths: list[Path], grey, size) -> torch.Tensor:
    """One image open at a time (an open PIL image holds its file: a folder larger than the
    open-file limit would fail): headers first for the mode and sizes, then the pixels."""
    modes, sizes = set(), set()
    for p in paths:
        with _open(p) as im:
            modes.add(im.mode)
            sizes.add(im.size)
    mode = {True: "L", False: "RGB", None: "L" if modes <= set(_GREY_MODES) else "RGB"}[grey]
    if size is None and len(sizes) > 1:
        shown = sorted(f"{w}x{h}" for w, h in sizes)
        raise DataError(f"image_folder: images differ in size ({', '.join(shown[:4])}); pass option size")
    out = []
    for p in paths:
        with _open(p) as im:
            try:
                a = np.asarray(im.convert(mode), dtype=np.uint8)
            except OSError as e:  # a file cut short: its header reads, its pixels do not
                raise DataError(f"image_folder: cannot read {p}: {e}") from None
        x = torch.from_numpy(a.astype(np.float32) / np.float32(255.0))
        x = x.unsqueeze(0) if x.dim() == 2 else x.permute(2, 0, 1)
        out.append(resample.resize(x.unsqueeze(0), size)[0] if size else x)
    return torch.stack(out)


@register_dataset(
    "image_folder",
    description=(
        "Images from PATH, one sub-folder per class (sorted names are the classes), PNG/JPEG, grey or "
        "RGB (option grey, else grey only if every image is); 0..255 scaled to [0,1]. Option size "
        "resizes (bilinear); test_fraction (0.2) of each class goes to test, drawn by the seed."
    ),
    size="any",
    seeded=True,
    fingerprint=_fingerprint,
    takes_path=True,
)
def build_image_folder(ctx: BuildContext, *, size=None, grey=None, test_fraction=0.2):
    if size is not None:
        size = size_arg("image_folder option 'size'", size)
    if grey is not None:
        grey = bool_arg("image_folder option 'grey'", grey)
    test_fraction = fraction_arg("image_folder option 'test_fraction'", test_fraction)
    _, classes, files = _scan(ctx.path)
    x = _load([p for group in files for p in group], grey, size)
    labels = np.repeat(np.arange(len(classes)), [len(group) for group in files])
    train, test = (torch.from_numpy(i) for i in stratified_split(labels, test_fraction, ctx.rng("split")))
    y = torch.from_numpy(labels.astype(np.int64))
    return make_splits(
        ctx.name, {"train": (x[train], y[train]), "test": (x[test], y[test])}, classes, ctx.description
    )
