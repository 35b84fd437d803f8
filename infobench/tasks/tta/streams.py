"""Test streams: the order in which shifted, unlabeled test samples reach a TTA method.

A :class:`Stream` is one array of samples in arrival order, cut into segments (a segment is
one domain visit; batches never straddle segments, and ``reset: per_domain`` resets at every
segment start). Labels stay with the stream for scoring only; outliers carry label -1.

Orders (``scenario.order``):

- ``single``: one domain (``scenario.domain``, default the dataset's first).
- ``continual``: every domain in the dataset's order, one after another (Wang et al. 2022, CoTTA).
- ``gradual``: per corruption, severity 1->2->3->4->5->4->3->2->1, corruptions in order
  (Marsden et al. 2024, RMT, "gradual" setting); needs severities 1-5 of each corruption.
- ``mixed``: all domains pooled and shuffled together (one segment).
- ``dirichlet``: continual, but within each domain samples arrive label-correlated: each
  class's samples are spread over time slots by proportions drawn from Dir(delta), the
  slots concatenated in time order and shuffled within a slot (Gong et al., NOTE, NeurIPS
  2022, Sec. 4; Yuan et al., RoTTA, CVPR 2023). Documented choice: one slot per test batch.
- ``open_set``: continual, with outliers mixed into every domain so that they make up
  ``outlier_ratio`` of it: uniform noise images (within the source data's value range, see :func:`noise_range`)
  and/or samples of held-out classes the source model never saw in training.

``rounds > 1`` repeats the whole sequence: a longer stream, on which methods that drift or
collapse show it.

Domains may be lazy image arrays (:class:`~infobench.data.images.ImageFiles`, ImageNet-C): the
stream is then built with :func:`~infobench.data.images.take` and
:func:`~infobench.data.images.concat`, which only rearrange row references, so ``Stream.x``
stays lazy and nothing is decoded until the task reads its batches. The order of rows (and of
every random draw) is the same as for the same data in memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from infobench.data.base import DataBundle, Split
from infobench.data.images import Images, concat, take
from infobench.errors import InfobenchError


@dataclass
class Segment:
    """One visit of a domain: stream rows ``[start, stop)``."""

    name: str
    start: int
    stop: int


@dataclass
class Stream:
    """Samples in arrival order. ``y`` is -1 for outliers; ``domain[i]`` indexes ``domain_names``.

    ``x`` is float32 (n, *input_shape): a numpy array, or a lazy ``ImageFiles`` when the
    domains are (read it with :func:`~infobench.data.images.iter_batches`).
    """

    x: Images
    y: np.ndarray
    domain: np.ndarray
    domain_names: list[str]
    segments: list[Segment] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.y)

    def batches(self, batch_size: int) -> list[tuple[int, int, bool]]:
        """``(start, stop, starts_segment)`` of each batch; batches never cross a segment border."""
        out = []
        for seg in self.segments:
            for start in range(seg.start, seg.stop, batch_size):
                out.append((start, min(start + batch_size, seg.stop), start == seg.start))
        return out

    @property
    def outlier(self) -> np.ndarray:
        return self.y < 0


def severity_of(domain: str) -> int | None:
    """The severity of a ``"<shift>@<severity>"`` key when it is an integer, else None."""
    _, _, level = domain.rpartition("@")
    return int(level) if level.isdigit() else None


def shift_of(domain: str) -> str:
    """The shift name of a ``"<shift>@<severity>"`` key."""
    return domain.rpartition("@")[0] or domain


def dirichlet_order(y: np.ndarray, delta: float, n_slots: int, rng: np.random.Generator) -> np.ndarray:
    """A label-correlated permutation of ``y`` (n,): class c's samples go to ``n_slots`` time
    slots by proportions ~ Dir(delta * 1); slots are visited in order, shuffled inside.

    Small ``delta`` concentrates each class in few slots (a batch sees few classes); large
    ``delta`` approaches an i.i.d. shuffle.
    """
    slot_of = np.empty(len(y), dtype=np.int64)
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        idx = idx[rng.permutation(len(idx))]
        props = rng.dirichlet(np.full(n_slots, delta))
        cuts = (np.cumsum(props)[:-1] * len(idx)).astype(np.int64)
        for slot, part in enumerate(np.split(idx, cuts)):
            slot_of[part] = slot
    jitter = rng.random(len(y))
    return np.lexsort((jitter, slot_of))


def _subsample(split: Split, limit: int | None, rng: np.random.Generator) -> tuple[Images, np.ndarray]:
    if limit is None or limit >= len(split):
        return split.x, split.y
    keep = np.sort(rng.choice(len(split), size=limit, replace=False))
    return take(split.x, keep), split.y[keep]


def noise_range(x: Images) -> tuple[float, float]:
    """The value range of uniform-noise outliers: that of the source training inputs ``x``, or
    [0, 1], the range of every image loader, when they are lazy images or empty (ImageNet-C,
    used with a pretrained model, has no training data)."""
    if isinstance(x, np.ndarray) and x.size:
        return float(x.min()), float(x.max())
    return 0.0, 1.0


def _visits(data: DataBundle, order: str, domain: str | None) -> list[str]:
    names = list(data.domains)
    if not names:
        raise InfobenchError(f"dataset {data.name!r} has no shifted domains to adapt on")
    if order == "single":
        chosen = domain if domain is not None else names[0]
        if chosen not in data.domains:
            raise InfobenchError(f"scenario.domain: {chosen!r} is not a domain of {data.name!r}; domains: {', '.join(names)}")
        return [chosen]
    if domain is not None:
        raise InfobenchError(f"scenario.domain is only used with order: single, not {order!r}")
    if order != "gradual":
        return names
    visits = []
    for shift in dict.fromkeys(shift_of(n) for n in names):
        missing = [lvl for lvl in range(1, 6) if f"{shift}@{lvl}" not in data.domains]
        if missing:
            raise InfobenchError(
                f"order: gradual needs severities 1-5 of every shift; {shift!r} lacks {missing} "
                "(set dataset.severity: [1, 2, 3, 4, 5])"
            )
        visits += [f"{shift}@{lvl}" for lvl in (1, 2, 3, 4, 5, 4, 3, 2, 1)]
    return visits


def build_stream(
    data: DataBundle,
    order: str,
    batch_size: int,
    rng: np.random.Generator,
    *,
    domain: str | None = None,
    shuffle: bool = True,
    max_per_domain: int | None = None,
    delta: float = 0.1,
    rounds: int = 1,
    outlier_ratio: float = 0.0,
    noise_outliers: bool = False,
    held_out_classes: tuple[int, ...] = (),
) -> Stream:
    """The stream of ``order`` over ``data.domains``; see the module docstring for each order.

    Samples of ``held_out_classes`` become outliers (label -1) when ``order == "open_set"``;
    ``noise_outliers`` adds uniform-noise images. ``outlier_ratio`` is the fraction of each
    open-set domain made of outliers. ``rounds`` repeats the sequence of visits (each visit
    draws its own order, and its own outliers); a ``mixed`` stream pools every round.
    """
    visits = _visits(data, order, domain) * rounds
    names = list(dict.fromkeys(visits))
    index = {n: i for i, n in enumerate(names)}
    value_range = noise_range(data.train.x)
    xs, ys, ds, segments = [], [], [], []
    pos = 0
    for name in visits:
        x, y = _subsample(data.domains[name], max_per_domain, rng)
        if order == "open_set":
            x, y = _with_outliers(x, y, outlier_ratio, noise_outliers, held_out_classes, value_range, rng)
        if order == "dirichlet":
            perm = dirichlet_order(y, delta, max(1, -(-len(y) // batch_size)), rng)
        elif shuffle or order == "open_set":
            perm = rng.permutation(len(y))
        else:
            perm = np.arange(len(y))
        xs.append(take(x, perm))
        ys.append(y[perm])
        ds.append(np.full(len(y), index[name], dtype=np.int64))
        segments.append(Segment(name, pos, pos + len(y)))
        pos += len(y)
    x = concat(xs)
    x = x.astype(np.float32, copy=False) if isinstance(x, np.ndarray) else x  # lazy ones are float32
    stream = Stream(x, np.concatenate(ys).astype(np.int64), np.concatenate(ds), names, segments)
    if order == "mixed":
        perm = rng.permutation(len(stream))
        stream = Stream(take(stream.x, perm), stream.y[perm], stream.domain[perm], names, [Segment("mixed", 0, len(perm))])
    return stream


def _with_outliers(
    x: Images,
    y: np.ndarray,
    ratio: float,
    noise: bool,
    held_out: tuple[int, ...],
    value_range: tuple[float, float],
    rng: np.random.Generator,
) -> tuple[Images, np.ndarray]:
    """Relabel held-out classes as outliers (-1), then add noise images up to ``ratio`` of the total.

    The outlier budget is ``ratio / (1 - ratio)`` times the inliers. Held-out samples fill it
    alone (as many as there are), noise images alone, or, with both, half of it each (noise
    fills whatever the held-out samples cannot).
    """
    y = y.copy()
    is_out = np.isin(y, held_out)
    y[is_out] = -1
    inliers = int((~is_out).sum())
    wanted = int(round(ratio / (1.0 - ratio) * inliers))
    out_idx = np.flatnonzero(is_out)
    quota = wanted // 2 if noise else wanted
    out_idx = rng.choice(out_idx, size=min(quota, len(out_idx)), replace=False)
    keep = np.sort(np.concatenate([np.flatnonzero(~is_out), out_idx]))
    x, y = take(x, keep), y[keep]
    n_noise = wanted - len(out_idx) if noise else 0
    if n_noise > 0:
        lo, hi = value_range
        fake = rng.uniform(lo, hi, size=(n_noise, *x.shape[1:])).astype(np.float32)
        x = concat([x, fake])
        y = np.concatenate([y, np.full(n_noise, -1, dtype=np.int64)])
    return x, y
