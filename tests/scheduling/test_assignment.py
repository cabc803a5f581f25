"""The lazy greedy gives exactly the plain greedy over exact scores, and serves urgent pairs first."""
import numpy as np
from datas_pipeline.sky.visibility import HorizonProfile

from scheduling import SchedulerConfig, TimeCriticalWindow, schedule_network, scoring
from scheduling.assignment import assign_urgent
from scheduling.candidates import PairFactors, SiteGrid, refine_site, time_critical_candidates
from scheduling.planner import site_contexts
from scheduling.tables import SiteTable, TargetTable
from tests.scheduling.factories import NOW, random_network, target


def brute_force(targets, sites, config):
    """Score every pair exactly, then the textbook greedy: urgent queue, then everything by score."""
    tt, st = TargetTable.from_specs(targets, NOW), SiteTable.from_specs(sites)
    contexts, _, _ = site_contexts(st, NOW, config)
    terms = scoring.target_terms(tt, NOW, config.weights)
    factors = PairFactors.prepare(tt, st, NOW, np.prod(np.stack(list(terms.values())), axis=0), config.weights)
    pairs = []  # (site, target, score, urgent)
    normal_rows = np.flatnonzero(~tt.time_critical)
    for ctx in contexts:
        grid = SiteGrid.build(ctx, config.step_s)
        share = np.zeros(len(tt))
        for k, site_id in enumerate(tt.recent_site):
            if st.index_of.get(site_id) == ctx.index:
                share[tt.recent_target[k]] = tt.recent_share[k]
        tc_rows, tc_end, tc_boost = time_critical_candidates(factors, ctx)
        for rows, ends, boosts in ((tc_rows, tc_end, tc_boost),
                                   (normal_rows, np.full(normal_rows.size, np.nan), np.ones(normal_rows.size))):
            refined = refine_site(factors, ctx, grid, rows, ends, boosts, share[rows], config.min_window_minutes * 60)
            pairs += [(ctx.index, int(r), float(sc), bool(u)) for r, sc, u in
                      zip(refined.target, refined.score, refined.urgent, strict=True) if sc > 0]
    site_arr = np.array([p[0] for p in pairs])
    target_arr = np.array([p[1] for p in pairs])
    score_arr = np.array([p[2] for p in pairs])
    urgent_arr = np.array([p[3] for p in pairs])
    capacity = np.full(len(st), config.list_length)
    filled, given = np.zeros(len(st), int), np.zeros(len(tt), int)
    urgent = np.flatnonzero(urgent_arr)
    chosen = set()
    for i in urgent[assign_urgent(site_arr[urgent], target_arr[urgent], score_arr[urgent], capacity,
                                  tt.site_quota, filled, given)]:
        chosen.add((int(site_arr[i]), int(target_arr[i])))
    for i in np.flatnonzero(~urgent_arr)[np.argsort(-score_arr[~urgent_arr], kind="stable")]:
        s, t = int(site_arr[i]), int(target_arr[i])
        if filled[s] < capacity[s] and given[t] < tt.site_quota[t]:
            filled[s] += 1
            given[t] += 1
            chosen.add((s, t))
    return {(sites[s].id, targets[t].id) for s, t in chosen}


def test_lazy_greedy_with_refills_equals_the_brute_force_greedy():
    targets, sites = random_network(600, 8, seed=11, min_moon_separation_deg=25.0,
                                    horizon=HorizonProfile.from_points({0: 15, 90: 45, 180: 20, 270: 35}))
    window = (TimeCriticalWindow(NOW - 600, NOW + 2400, 2.0),)
    targets += [target(f"tc{i}", t.ra_deg, t.dec_deg, time_critical=window) for i, t in enumerate(targets[:40])]
    # Few candidates per site force the refill path; the answer must not change.
    for per_site in (0, 12):
        config = SchedulerConfig(list_length=15, candidates_per_site=per_site, refill_rounds=6)
        result = schedule_network(targets, sites, NOW, config)
        got = {(site_id, e.target_id) for site_id, s in result.sites.items() for e in s.entries}
        assert got == brute_force(targets, sites, config)
        if per_site:
            assert result.stats["refills"] > 0
    assert any(e.urgent for s in result.sites.values() for e in s.entries)
