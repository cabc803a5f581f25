"""Extraction options of ``datas-pipeline extract``: our defaults, SExtractor's file, or both.

``--sextractor-config default.sex`` reads the user's SExtractor settings
(:mod:`datas_pipeline.detection.sextractor_config`); any option given on the command line
overrides the file. Without a file the defaults are the project's (5 sigma against the local
noise map, deblending contrast 0.005, aperture 1.5 x FWHM).
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

from datas_pipeline.cli.arguments import non_negative_float, positive_float, positive_int

# Our defaults for the options a SExtractor file may set (None: the library's own default).
DEFAULTS = {"threshold_sigma": 5.0, "min_area": 5, "noise": "map", "deblend_cont": 0.005, "deblend_nthresh": 32}

# Command-line destination -> extract_sources keyword.
OPTION_KEYWORDS = {
    "threshold": "threshold_sigma", "min_area": "min_area", "noise": "noise", "deblend_cont": "deblend_cont",
    "deblend_nthresh": "deblend_nthresh", "aperture": "aperture_radius", "gain": "gain",
    "saturation": "saturation",
}


@dataclass
class ExtractionSettings:
    """Keyword arguments for ``extract_sources`` and ``estimate_background``, and where they came from."""

    extract: dict = field(default_factory=dict)
    background: dict = field(default_factory=dict)
    source: str = "defaults"
    ignored: list[str] = field(default_factory=list)

    def as_record(self) -> dict:
        """The settings used, for the JSON output (the filter as its shape)."""
        record = {k: v for k, v in self.extract.items() if k != "filter_kernel"}
        if "filter_kernel" in self.extract:
            kernel = self.extract["filter_kernel"]
            record["filter"] = None if kernel is None else list(kernel.shape)
        record.update(self.background)
        record["source"] = self.source
        if self.ignored:
            record["ignored_sextractor_keys"] = self.ignored
        return record


def add_extraction_arguments(parser: argparse.ArgumentParser) -> None:
    """Detection and measurement options; every default None so a SExtractor file can fill it."""
    parser.add_argument("--sextractor-config", type=Path, metavar="FILE",
                        help="read SExtractor's settings (default.sex; its FILTER_NAME beside it); "
                             "options given here override the file")
    parser.add_argument("--threshold", type=positive_float, help="detection threshold (sigma; default 5)")
    parser.add_argument("--min-area", type=positive_int, help="minimum pixels above the threshold (default 5)")
    parser.add_argument("--noise", choices=("map", "global"),
                        help="threshold against the local noise map (default) or the global rms, as "
                             "SExtractor does without a weight map")
    parser.add_argument("--deblend-cont", type=non_negative_float,
                        help="deblending contrast, SExtractor's DEBLEND_MINCONT (default 0.005; 1 = no deblending)")
    parser.add_argument("--deblend-nthresh", type=positive_int, help="deblending sub-thresholds (default 32)")
    parser.add_argument("--back-size", type=positive_int, help="background mesh (px, default 64)")
    parser.add_argument("--back-filter-size", type=positive_int, help="background median filter (cells, default 3)")
    parser.add_argument("--no-filter", action="store_true", help="detect without the 3x3 smoothing filter")
    parser.add_argument("--aperture", type=positive_float, help="aperture radius (px); default 1.5 x FWHM")
    parser.add_argument("--gain", type=positive_float, help="e-/ADU, adds the Poisson term to the flux errors")
    parser.add_argument("--saturation", type=positive_float, help="ADU level of saturation")


def extraction_settings(args: argparse.Namespace) -> ExtractionSettings:
    """The settings from the SExtractor file (if any), then our defaults, then explicit options."""
    settings = ExtractionSettings()
    if args.sextractor_config is not None:
        from datas_pipeline.detection.sextractor_config import read_sextractor_config

        sex = read_sextractor_config(args.sextractor_config)
        settings = ExtractionSettings(dict(sex.extract), dict(sex.background), str(args.sextractor_config), sex.ignored)
    for key, value in DEFAULTS.items():
        settings.extract.setdefault(key, value)
    for option, keyword in OPTION_KEYWORDS.items():
        value = getattr(args, option)
        if value is not None:
            settings.extract[keyword] = value
    if args.no_filter:
        settings.extract["filter_kernel"] = None
    if args.back_size is not None:
        settings.background["box_size"] = args.back_size
    if args.back_filter_size is not None:
        settings.background["filter_size"] = args.back_filter_size
    return settings
