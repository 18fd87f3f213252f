"""Mutual information per layer by binning (Shwartz-Ziv & Tishby, 2017), and the information plane.

Each state is discretised into n_bins equal bins over that layer's [min, max]; a sample's binned
activation vector is one discrete symbol T. The net is deterministic, so I(X;T) = H(T) (bounded by
log2 N for N samples); I(T;Y) = H(T) - H(T|Y). Entropies in bits, from the empirical counts, so the
estimates depend on n_bins and N.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from racecar_study.core.analysis._util import analysis_mode

__all__ = ["LayerMI", "discrete_information", "layer_information", "mi_plane_plot", "symbols"]


@dataclass(frozen=True)
class LayerMI:
    name: str
    i_xt: float  # I(X;T) = H(T), bits
    i_ty: float  # I(T;Y), bits


def _entropy(codes: np.ndarray) -> float:
    p = np.bincount(codes) / len(codes)
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def symbols(values: np.ndarray, n_bins: int | None = None) -> np.ndarray:
    """One integer symbol per row of `values` (N, ...); rows are binned first if n_bins is given."""
    v = np.asarray(values).reshape(len(values), -1)
    if n_bins is not None:
        v = v.astype(np.float64)
        lo, hi = v.min(), v.max()
        if hi > lo:
            v = np.clip(np.floor((v - lo) / (hi - lo) * n_bins), 0, n_bins - 1).astype(np.int64)
        else:
            v = np.zeros(v.shape, dtype=np.int64)
    return np.unique(v, axis=0, return_inverse=True)[1].reshape(-1)


def discrete_information(t_codes: np.ndarray, y_codes: np.ndarray) -> tuple[float, float]:
    """(H(T), I(T;Y)) in bits for paired discrete symbols."""
    h_t = _entropy(t_codes)
    h_t_given_y = 0.0
    for y in np.unique(y_codes):
        mask = y_codes == y
        h_t_given_y += mask.mean() * _entropy(t_codes[mask])
    return h_t, max(h_t - h_t_given_y, 0.0)


def layer_information(
    net, x: torch.Tensor, y: torch.Tensor | np.ndarray, n_bins: int = 30, include_output: bool = True
) -> list[LayerMI]:
    """LayerMI for each state d_2..d_n of net.racecar(x) and, if include_output, the output
    (logits, named "output"). Runs in eval mode under no_grad; training flags are restored."""
    with analysis_mode(net):
        out = net.racecar(x)
    y_codes = symbols(y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y))
    if len(y_codes) != len(x):
        raise ValueError(f"{len(y_codes)} labels for {len(x)} inputs")
    named = list(zip(net.state_names[1:], out.states[1:]))
    if include_output:
        named.append(("output", out.logits))
    results = []
    for name, state in named:
        t_codes = symbols(state.detach().cpu().numpy(), n_bins)
        h_t, i_ty = discrete_information(t_codes, y_codes)
        results.append(LayerMI(name, h_t, i_ty))
    return results


def mi_plane_plot(
    results_by_label: Mapping[str, Sequence[LayerMI]], path: str | Path, title: str | None = None
) -> Path:
    """Information plane: I(X;T) against I(T;Y), one line per label through its layers (numbered
    from the input side)."""
    fig = Figure(figsize=(6, 4.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for label, layers in results_by_label.items():
        xs = [r.i_xt for r in layers]
        ys = [r.i_ty for r in layers]
        (line,) = ax.plot(xs, ys, "-o", label=label, alpha=0.8)
        for i, (a, b) in enumerate(zip(xs, ys), start=1):
            ax.annotate(
                str(i), (a, b), textcoords="offset points", xytext=(4, 4), fontsize=7, color=line.get_color()
            )
    ax.set_xlabel("I(X;T) [bits]")
    ax.set_ylabel("I(T;Y) [bits]")
    if title:
        ax.set_title(title)
    if results_by_label:
        ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path
