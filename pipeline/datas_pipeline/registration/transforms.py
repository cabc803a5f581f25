"""Geometric transforms between frames and their least-squares fits.

A :class:`Transform` maps **reference** pixel coordinates to **frame** pixel coordinates
(0-based numpy order, ``x`` column, ``y`` row): the reference point ``(x, y)`` is seen at
``transform.apply(x, y)`` in the frame. That is the direction a warp needs (for every
output pixel, where to read the frame) and the convention of
:func:`datas_pipeline.synthetic.fields.transform_points`.

Kinds: ``shift`` (2 parameters), ``similarity`` (4: shift, rotation, uniform scale; mirrored
when the camera or a diagonal flipped the image), ``affine`` (6) and ``polynomial`` (order 2
or 3 in both coordinates, for wide fields with distortion).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KINDS = ("shift", "similarity", "affine", "polynomial")
MIN_POINTS = {"shift": 1, "similarity": 2, "affine": 3}


def polynomial_terms(order: int) -> list[tuple[int, int]]:
    """Exponents ``(i, j)`` of ``u**i v**j`` for all terms of total degree <= ``order``."""
    return [(i, d - i) for d in range(order + 1) for i in range(d, -1, -1)]


@dataclass(frozen=True, eq=False)
class Transform:
    """A reference-to-frame mapping.

    ``matrix`` is the 3x3 homogeneous affine part. For ``polynomial`` transforms the mapping
    is ``coefficients @ terms(u, v)`` with ``u = (x - origin_x) / norm``, ``v = (y - origin_y)
    / norm``, and ``matrix`` holds its best affine approximation (used for quality figures).
    """

    kind: str
    matrix: np.ndarray
    order: int = 1
    coefficients: np.ndarray | None = None
    origin: tuple[float, float] = (0.0, 0.0)
    norm: float = 1.0

    def apply(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Frame coordinates (px) of reference coordinates ``x, y`` (px)."""
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        if self.kind == "polynomial":
            design = _design(x, y, self.order, self.origin, self.norm)
            shape = np.broadcast(x, y).shape
            return (design @ self.coefficients[0]).reshape(shape), (design @ self.coefficients[1]).reshape(shape)
        m = self.matrix
        return m[0, 0] * x + m[0, 1] * y + m[0, 2], m[1, 0] * x + m[1, 1] * y + m[1, 2]

    @property
    def is_linear(self) -> bool:
        """True when the mapping is affine (every kind but ``polynomial``)."""
        return self.kind != "polynomial"

    @property
    def linear(self) -> np.ndarray:
        """The 2x2 linear part of the (approximate) affine mapping."""
        return self.matrix[:2, :2]

    @property
    def flipped(self) -> bool:
        """True when the frame is a mirror image of the reference."""
        return bool(np.linalg.det(self.linear) < 0)

    @property
    def scale(self) -> float:
        """Frame px per reference px (geometric mean of the two axes)."""
        return float(np.sqrt(abs(np.linalg.det(self.linear))))

    @property
    def rotation_deg(self) -> float:
        """Rotation (degrees, from +x towards +y) after undoing any mirror in x."""
        a = self.linear @ np.diag([-1.0, 1.0]) if self.flipped else self.linear
        return float(np.degrees(np.arctan2(a[1, 0] - a[0, 1], a[0, 0] + a[1, 1])))

    def displacement(self, center: tuple[float, float]) -> tuple[float, float]:
        """Where the reference point ``center`` moved to in the frame, minus ``center`` (px)."""
        fx, fy = self.apply(np.array([center[0]]), np.array([center[1]]))
        return float(fx[0] - center[0]), float(fy[0] - center[1])

    def inverse_matrix(self) -> np.ndarray:
        """The 3x3 frame-to-reference matrix of the affine part."""
        return np.linalg.inv(self.matrix)

    def to_dict(self) -> dict:
        """A JSON-serialisable description (inverse of :func:`transform_from_dict`)."""
        out = {"kind": self.kind, "matrix": self.matrix.tolist()}
        if self.kind == "polynomial":
            out.update(order=self.order, coefficients=self.coefficients.tolist(),
                       origin=list(self.origin), norm=self.norm)
        return out


def transform_from_dict(data: dict) -> Transform:
    """Rebuild a :class:`Transform` written by :meth:`Transform.to_dict`."""
    if data["kind"] == "polynomial":
        return Transform("polynomial", np.array(data["matrix"]), int(data["order"]),
                         np.array(data["coefficients"]), tuple(data["origin"]), float(data["norm"]))
    return Transform(data["kind"], np.array(data["matrix"]))


def similarity_matrix(a: complex, b: complex, flip: bool) -> np.ndarray:
    """3x3 matrix of ``z' = a w + b`` with ``w = z`` or, mirrored, ``w = -conj(z)``."""
    ar, ai = a.real, a.imag
    m = np.array([[ar, -ai, b.real], [ai, ar, b.imag], [0.0, 0.0, 1.0]])
    if flip:
        m[:2, 0] *= -1.0
    return m


def _as_complex(xy: np.ndarray, flip: bool) -> np.ndarray:
    z = xy[..., 0] + 1j * xy[..., 1]
    return -np.conj(z) if flip else z


def fit_similarity_batch(ref: np.ndarray, frame: np.ndarray, flip: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares similarities for many small point sets at once.

    ``ref, frame`` are (H, n, 2) arrays of corresponding points; ``flip`` (H,) says which
    hypotheses are mirrored. Returns complex ``a, b`` (H,) with ``frame = a w + b``.
    """
    w = ref[..., 0] + 1j * ref[..., 1]
    w = np.where(flip[:, None], -np.conj(w), w)
    z = frame[..., 0] + 1j * frame[..., 1]
    mw, mz = w.mean(axis=1), z.mean(axis=1)
    dw, dz = w - mw[:, None], z - mz[:, None]
    denom = (np.abs(dw) ** 2).sum(axis=1)
    a = (dz * np.conj(dw)).sum(axis=1) / np.where(denom > 0, denom, 1.0)
    return a, mz - a * mw


def fit_transform(
    kind: str,
    ref: np.ndarray,
    frame: np.ndarray,
    flip: bool = False,
    order: int = 2,
    weights: np.ndarray | None = None,
) -> Transform:
    """Least-squares transform of ``kind`` taking ``ref`` (n, 2) onto ``frame`` (n, 2) points (px).

    ``flip`` applies to ``shift`` and ``similarity`` (affine and polynomial fits find a mirror
    by themselves). ``weights`` (n,) weight each pair's squared residual.
    """
    ref = np.asarray(ref, dtype=np.float64)
    frame = np.asarray(frame, dtype=np.float64)
    w = np.ones(len(ref)) if weights is None else np.asarray(weights, dtype=np.float64)
    if kind == "shift":
        t = ((frame - ref * ([-1.0, 1.0] if flip else 1.0)) * w[:, None]).sum(axis=0) / w.sum()
        m = np.array([[-1.0 if flip else 1.0, 0.0, t[0]], [0.0, 1.0, t[1]], [0.0, 0.0, 1.0]])
        return Transform("shift", m)
    if kind == "similarity":
        wz = _as_complex(ref, flip)
        z = frame[:, 0] + 1j * frame[:, 1]
        mw, mz = (wz * w).sum() / w.sum(), (z * w).sum() / w.sum()
        dw, dz = wz - mw, z - mz
        a = (w * dz * np.conj(dw)).sum() / (w * np.abs(dw) ** 2).sum()
        return Transform("similarity", similarity_matrix(complex(a), complex(mz - a * mw), flip))
    if kind == "affine":
        design = np.column_stack([ref, np.ones(len(ref))]) * np.sqrt(w)[:, None]
        coef, *_ = np.linalg.lstsq(design, frame * np.sqrt(w)[:, None], rcond=None)
        return Transform("affine", np.vstack([coef.T, [0.0, 0.0, 1.0]]))
    if kind == "polynomial":
        origin = (float(ref[:, 0].mean()), float(ref[:, 1].mean()))
        norm = float(max(np.ptp(ref[:, 0]), np.ptp(ref[:, 1]), 1.0) / 2.0)
        design = _design(ref[:, 0], ref[:, 1], order, origin, norm) * np.sqrt(w)[:, None]
        coef, *_ = np.linalg.lstsq(design, frame * np.sqrt(w)[:, None], rcond=None)
        affine = fit_transform("affine", ref, frame, weights=w)
        return Transform("polynomial", affine.matrix, order, coef.T.copy(), origin, norm)
    raise ValueError(f"unknown transform kind {kind!r}; choose one of {', '.join(KINDS)}")


def min_points(kind: str, order: int = 2) -> int:
    """Fewest point pairs that determine a transform of ``kind``."""
    if kind == "polynomial":
        return len(polynomial_terms(order))
    return MIN_POINTS[kind]


def _design(x: np.ndarray, y: np.ndarray, order: int, origin: tuple[float, float], norm: float) -> np.ndarray:
    x, y = np.broadcast_arrays(x, y)
    u = (np.ravel(x) - origin[0]) / norm
    v = (np.ravel(y) - origin[1]) / norm
    return np.column_stack([u**i * v**j for i, j in polynomial_terms(order)])
