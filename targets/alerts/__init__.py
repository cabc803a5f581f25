"""Alert ingest: sources (ZTF, GCN, VOEvent, Gaia, TNS), per-network rules, streams and polls.

One hop from the API and the commands: :mod:`targets.alerts.ingest` turns parsed alerts into
stored alerts, targets, campaigns and survey photometry; each format is a source class in
:mod:`targets.alerts.sources`, listed in ``settings.DATAS_ALERT_SOURCES`` and loaded by
:func:`targets.alerts.registry.sources`.
"""
