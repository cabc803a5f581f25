"""The network scheduler: who observes what next, for every site at once (no Django here).

``schedule_network(targets, sites, now)`` takes :class:`TargetSpec` and :class:`SiteSpec`
objects and returns a :class:`NetworkSchedule` with one ranked :class:`SiteSchedule` per site.
"""
from scheduling.planner import SchedulerConfig, schedule_network, site_readiness
from scheduling.scoring import Weights
from scheduling.specs import (
    POLICY_DIVERSE,
    POLICY_REDUNDANT,
    CampaignSpec,
    FilterStep,
    NetworkSchedule,
    ScheduleEntry,
    SchedulingError,
    SiteSchedule,
    SiteSpec,
    TargetSpec,
    TimeCriticalWindow,
)

__all__ = [
    "POLICY_DIVERSE", "POLICY_REDUNDANT", "CampaignSpec", "FilterStep", "NetworkSchedule", "ScheduleEntry",
    "SchedulerConfig", "SchedulingError", "SiteSchedule", "SiteSpec", "TargetSpec", "TimeCriticalWindow",
    "Weights", "schedule_network", "site_readiness",
]
