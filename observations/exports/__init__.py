"""Files DATAS writes about observations for other tools: the AAVSO report (tasking files: scheduling.exports)."""
