"""Network-wide greedy assignment of scored (target, site) pairs.

Two priority queues, each served best score first:

1. urgent pairs (time-critical targets inside their window). First each site takes at most
   one, so an urgent target goes to the best site that can see it *and is free now*; then
   the urgent pairs left are stacked where they fit.
2. everything else, through :class:`LazyGreedy`: one heap over the sites, each site offering
   its best remaining pair. Pairs enter with an upper-bound score and are checked exactly
   (in batches) only when they reach the top, so most of the 100 million pairs are never
   looked at twice. Because an exact score never exceeds its bound, the result equals a
   greedy pass over exact scores.

A target goes to one site per pass (no double booking), or to as many as its ``redundant``
campaign asks for, best sites first. Long-term targets spread over the network because the
recent-site term lowers the score where a target was observed lately, so later passes prefer
other sites.
"""
from __future__ import annotations

import heapq
from collections.abc import Callable

import numpy as np


def assign_urgent(site: np.ndarray, target: np.ndarray, score: np.ndarray, capacity: np.ndarray,
                  quota: np.ndarray, filled: np.ndarray, given: np.ndarray) -> list[int]:
    """Assign urgent pairs (exact scores); ``filled`` and ``given`` are updated in place.

    Returns the indices of the pairs taken, in the order taken.
    """
    chosen: list[int] = []
    taken: set[tuple[int, int]] = set()
    urgent_taken: set[int] = set()
    order = np.argsort(-score, kind="stable").tolist()
    sites, targets = site.tolist(), target.tolist()
    for one_per_site in (True, False):
        for i in order:
            s, t = sites[i], targets[i]
            if filled[s] >= capacity[s] or given[t] >= quota[t] or (s, t) in taken or score[i] <= 0:
                continue
            if one_per_site and s in urgent_taken:
                continue
            taken.add((s, t))
            urgent_taken.add(s)
            filled[s] += 1
            given[t] += 1
            chosen.append(i)
    return chosen


class SiteQueue:
    """One site's candidates: those still at their bound (best first), those checked (a heap),
    and ``frontier``, a bound on every target not yet drawn into the queue (-inf when none)."""

    __slots__ = ("waiting", "bounds", "next", "checked", "frontier")

    def __init__(self) -> None:
        self.waiting: list[int] = []
        self.bounds: list[float] = []
        self.next = 0
        self.checked: list[tuple[float, int]] = []
        self.frontier = -np.inf

    def extend(self, waiting: np.ndarray, bounds: np.ndarray, more: bool) -> None:
        """Append candidates (bounds best first, none above those already here)."""
        self.waiting = self.waiting[self.next:] + waiting.tolist()
        self.bounds = self.bounds[self.next:] + bounds.tolist()
        self.next = 0
        self.frontier = float(bounds[-1]) if more and len(bounds) else -np.inf

    def head(self) -> tuple[float, str]:
        """Best score on offer and what it is: ``bound`` (check it), ``exact`` (take it) or
        ``frontier`` (draw more candidates first); (-inf, 'empty') when nothing is left."""
        bound = self.bounds[self.next] if self.next < len(self.bounds) else -np.inf
        exact = -self.checked[0][0] if self.checked else -np.inf
        best = max(bound, exact)
        if self.frontier > best:
            return self.frontier, "frontier"
        if best == -np.inf:
            return best, "empty"
        return (bound, "bound") if bound > exact else (exact, "exact")


class LazyGreedy:
    """Greedy assignment over all sites, checking pairs only when they could be chosen.

    Parameters
    ----------
    refine : callable
        ``refine(site, pool_indices) -> exact scores`` (0 = not observable).
    refill : callable
        ``refill(site) -> (pool_indices, bounds, more)`` with the site's next candidates, best
        first, and whether any remain beyond them; called when the best a site might still
        offer lies beyond the candidates drawn so far.
    target_of : ndarray of int
        Target row of each pool index.
    batch : int
        Pairs checked per ``refine`` call.
    """

    def __init__(self, refine: Callable[[int, np.ndarray], np.ndarray],
                 refill: Callable[[int], tuple[np.ndarray, np.ndarray, bool]],
                 target_of: Callable[[], np.ndarray], batch: int = 64) -> None:
        self.refine, self.refill, self.target_of, self.batch = refine, refill, target_of, batch
        self.queues: dict[int, SiteQueue] = {}

    def add(self, site: int, pool_indices: np.ndarray, bounds: np.ndarray, more: bool) -> None:
        """Queue a site's candidates (bounds best first); ``more``: others exist beyond them."""
        self.queues.setdefault(site, SiteQueue()).extend(pool_indices, bounds, more)

    def run(self, capacity: np.ndarray, quota: np.ndarray, filled: np.ndarray, given: np.ndarray,
            taken: set[tuple[int, int]]) -> list[tuple[int, int]]:
        """Assign until every site is full or dry. Returns (site, pool index) in order taken."""
        chosen: list[tuple[int, int]] = []
        heap = [(-q.head()[0], s) for s, q in self.queues.items() if filled[s] < capacity[s]]
        heapq.heapify(heap)
        targets = self.target_of()
        while heap:
            key, s = heapq.heappop(heap)
            queue = self.queues[s]
            while filled[s] < capacity[s]:
                score, kind = queue.head()
                if kind == "empty" or score <= 0:
                    break
                if heap and score < -heap[0][0]:
                    heapq.heappush(heap, (-score, s))  # another site now offers more
                    break
                if kind == "frontier":
                    queue.extend(*self.refill(s))
                    targets = self.target_of()
                    continue
                if kind == "bound":
                    self._check(s, queue, targets, given, quota)
                    continue
                _, i = heapq.heappop(queue.checked)
                t = int(targets[i])
                if given[t] >= quota[t] or (s, t) in taken:
                    continue
                taken.add((s, t))
                filled[s] += 1
                given[t] += 1
                chosen.append((s, i))
        return chosen

    def _check(self, site: int, queue: SiteQueue, targets: np.ndarray, given: np.ndarray, quota: np.ndarray
               ) -> None:
        # Targets another site already took are dropped unchecked: they cannot be chosen here.
        picked: list[int] = []
        while len(picked) < self.batch and queue.next < len(queue.waiting):
            i = queue.waiting[queue.next]
            queue.next += 1
            if given[targets[i]] < quota[targets[i]]:
                picked.append(i)
        if not picked:
            return
        indices = np.asarray(picked, dtype=np.int64)
        for i, exact in zip(picked, self.refine(site, indices).tolist(), strict=True):
            if exact > 0:
                heapq.heappush(queue.checked, (-exact, i))
