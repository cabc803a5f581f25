"""Cataloguing a share: every FITS file under some folders becomes a frame of a network.

Files are catalogued where they lie (an :class:`ArchiveFile` row holds the path; nothing is
copied into the frame storage). Each file is read once: hashed, and its header parsed
without decoding pixels (:func:`datas_pipeline.archive.scan.scan_file`). A file whose path, size
and modification time are unchanged is skipped unread; a file whose bytes the network
already holds is recognised as moved or renamed (its path is updated) or as a second copy.
A file that cannot be used is listed with its reason and skipped. New lights then get a sky
position (:mod:`observations.archive.astrometry`), and every light of the site its
calibration (:mod:`observations.archive.library`).
"""
from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from datas_pipeline.archive.classify import UnclassifiedFrame, classify_frame
from datas_pipeline.archive.scan import ScannedFile, scan_file, walk_share
from datas_pipeline.archive.wcsfast import cards_wcs, describe_wcs_fast
from datas_pipeline.errors import PipelineError
from datas_pipeline.io.headers import TYPE_KEYS, normalise_header
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from network.models import Membership, Network, Role
from observations.archive.bulk import insert_rows
from observations.archive.models import ArchiveFile
from observations.frame_astrometry import footprint
from observations.frame_header import header_cards, is_master, judge_header
from observations.frames import Frame, ImageType, WcsSource
from observations.states import FrameState
from sites.models import Site

BATCH = 500
DEFAULT_SITE = "Observatory"


class CatalogueError(ValueError):
    """A catalogue run that cannot start (no such folder, a bad option), with what to fix."""


@dataclass
class CatalogueSummary:
    """What one pass over a share found and did."""

    files: int = 0
    new: int = 0
    unchanged: int = 0
    moved: list[tuple[str, str]] = field(default_factory=list)
    copies: list[tuple[str, str]] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    bad: list[tuple[str, str]] = field(default_factory=list)
    kinds: Counter = field(default_factory=Counter)
    astrometry: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    frame_ids: list[int] = field(default_factory=list)

    @property
    def files_per_s(self) -> float:
        return self.files / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict:
        return {"files": self.files, "new": self.new, "unchanged": self.unchanged, "moved": len(self.moved),
                "copies": len(self.copies), "replaced": len(self.replaced), "bad": [{"path": p, "reason": r} for p, r in self.bad],
                "kinds": dict(self.kinds), "astrometry": dict(self.astrometry), "seconds": round(self.seconds, 3)}


# --- Network and site --------------------------------------------------------------------------


def archive_network(slug: str, create: bool = True) -> Network:
    """The network ``slug``; a missing one is created as a personal network when ``create``."""
    network = Network.objects.filter(slug=slug).first()
    if network is not None:
        return network
    if not create:
        raise CatalogueError(f"no network with slug {slug!r}")
    if slugify(slug) != slug:
        raise CatalogueError(f"{slug!r} is not a valid network slug (lowercase letters, digits, hyphens)")
    return Network.objects.create(slug=slug, name=slug, description="Personal network of an observatory's archive")


def _owner(network: Network):
    membership = Membership.objects.filter(network=network, role=Role.OWNER).select_related("user").first()
    if membership is not None:
        return membership.user
    user, _ = get_user_model().objects.get_or_create(username=f"archive-{network.slug}"[:150])
    if user.has_usable_password():
        user.set_unusable_password()
        user.save(update_fields=["password"])
    Membership.objects.get_or_create(user=user, network=network, defaults={"role": Role.OWNER})
    return user


def archive_site(network: Network, name: str | None, where: tuple[float, float] | None = None) -> Site:
    """The site frames are catalogued for: ``name``, or the network's only site, else a new one
    at the headers' site coordinates (``where`` = latitude, longitude; 0, 0 when unknown)."""
    sites = Site.objects.filter(network=network)
    if name:
        site = sites.filter(name=name).first()
    else:
        site = sites.first() if sites.count() == 1 else sites.filter(name=DEFAULT_SITE).first()
        if site is None and sites.count() > 1:
            raise CatalogueError(f"network {network.slug!r} has {sites.count()} sites: say which with --site")
    if site is not None:
        return site
    latitude, longitude = where or (0.0, 0.0)
    return Site.objects.create(network=network, owner=_owner(network), name=name or DEFAULT_SITE,
                               latitude=latitude, longitude=longitude)


# --- One file ----------------------------------------------------------------------------------


def frame_columns(scanned: ScannedFile) -> tuple[dict, str]:
    """Frame columns from a scanned file, and how its kind was decided.

    Raises
    ------
    PipelineError
        The header cannot be used (no time, no exposure, no image size, unknown kind).
    """
    header = scanned.card_map  # what normalise_header reads of a fits.Header, from the fast parse
    info = normalise_header(header)
    verdict = judge_header(info)
    raw_type = next((str(header[k]) for k in TYPE_KEYS if k in header), None)
    try:
        kind = classify_frame(info, scanned.path, raw_type)
    except UnclassifiedFrame as exc:
        raise PipelineError(str(exc)) from None
    errors = [e for e in verdict.errors if "IMAGETYP must say" not in e and
              not (kind.kind == "bias" and "exposure" in e)]
    if errors:
        raise PipelineError("; ".join(errors))
    size = header.get("ZNAXIS1", header.get("NAXIS1")), header.get("ZNAXIS2", header.get("NAXIS2"))
    if not all(isinstance(v, int) and v > 0 for v in size):
        raise PipelineError("the header gives no image size (NAXIS1/NAXIS2)")
    record = info.as_dict()
    record["image_type"] = kind.kind
    return {
        "width": size[0], "height": size[1], "image_type": kind.kind, "is_master": is_master(header),
        "observed_at": info.mid_exposure or info.date_obs, "exposure_s": info.exposure_s,
        "filter": (info.filter or "")[:32] if kind.kind in ("light", "flat") else "",
        "header": record, "fits_header": header_cards(header),
    }, kind.reason


def header_astrometry(scanned: ScannedFile, columns: dict) -> dict:
    """``--solve never``: the header's WCS as written (unchecked: no pixels are read), else its
    mount pointing, said so."""
    found = cards_wcs(scanned.cards)
    if found is None:
        ra, dec = columns["header"].get("ra_deg"), columns["header"].get("dec_deg")
        if ra is None or dec is None:
            return {"astrometry": {"method": "none", "message": "no WCS and no pointing in the header: the frame "
                                                                "has no sky position"}}
        return {"ra_deg": float(ra) % 360.0, "dec_deg": float(dec), "astrometry": {
            "method": "header pointing", "message": "no WCS in the header and solving is off (--solve never); "
                                                    "fell back to the header's mount pointing (RA/DEC keywords)"}}
    wcs, keywords = found
    width, height = columns["width"], columns["height"]
    described = describe_wcs_fast(wcs, (height, width))
    return {"ra_deg": described["ra_deg"], "dec_deg": described["dec_deg"],
            "pixel_scale_arcsec": described["pixel_scale_arcsec"], "rotation_deg": described["rotation_deg"],
            "flipped": described["flipped"], "footprint": footprint(wcs, width, height),
            "wcs_source": WcsSource.HEADER, "wcs_header": keywords,
            "astrometry": {"method": "header", "check": "not checked (--solve never reads no pixels)"}}


# --- The pass ----------------------------------------------------------------------------------


def _known_files(network: Network) -> dict[str, tuple[int, float, int]]:
    rows = ArchiveFile.objects.filter(network=network).values_list("path", "size_bytes", "mtime", "frame_id")
    return {path: (size, mtime, frame_id) for path, size, mtime, frame_id in rows}


def catalogue_paths(
    paths: Iterable[str | Path], network: Network, site: Site | None = None, *, solve: str = "missing",
    progress: Callable[[int, int, Path], None] | None = None, grade: bool = True,
) -> CatalogueSummary:
    """Catalogue every FITS file under ``paths`` as frames of ``network``.

    Parameters
    ----------
    paths : iterable of str or Path
        Files or folders, walked recursively.
    network : Network
        The tenant the frames belong to.
    site : Site, optional
        The site they were taken at; found or created by :func:`archive_site` when None.
    solve : {"never", "missing", "always"}
        Astrometry of new lights (see :mod:`observations.archive.astrometry`).
    progress : callable, optional
        Called as ``progress(done, total, path)`` after each file.
    grade : bool
        Grade new lights whose pixels were read for astrometry.
    """
    if solve not in ("never", "missing", "always"):
        raise CatalogueError(f"--solve must be never, missing or always, not {solve!r}")
    roots = [Path(p).expanduser().resolve() for p in paths]
    missing = [str(p) for p in roots if not p.exists()]
    if missing:
        raise CatalogueError(f"no such file or folder: {', '.join(missing)}")
    started = time.perf_counter()
    files = list(walk_share(roots))
    summary = CatalogueSummary(files=len(files))
    known = _known_files(network)
    by_sha = dict(Frame.objects.filter(network=network).values_list("sha256", "id"))
    pending: list[tuple[Frame, ArchiveFile]] = []
    new_lights: list[tuple[int, Path]] = []
    for done, path in enumerate(files, start=1):
        _catalogue_one(path, network, site, known, by_sha, pending, summary, solve)
        if site is None and pending:
            site = pending[-1][0].site
        if len(pending) >= BATCH:
            new_lights += _flush(pending, summary)
        if progress:
            progress(done, len(files), path)
    new_lights += _flush(pending, summary)
    if site is not None:
        if solve != "never":
            _locate(new_lights, solve, grade, summary)
        from observations.archive.library import match_site_lights

        if any(summary.kinds[kind] for kind in ("dark", "flat", "bias")) or summary.replaced:
            match_site_lights(site)  # the library changed: every light of the site may choose anew
        elif new_lights:
            match_site_lights(site, Frame.objects.filter(pk__in=[pk for pk, _ in new_lights]))
    summary.seconds = time.perf_counter() - started
    return summary


def _catalogue_one(path: Path, network: Network, site: Site | None, known: dict, by_sha: dict,
                   pending: list, summary: CatalogueSummary, solve: str) -> None:
    text = str(path)
    try:
        stat = path.stat()
    except OSError as exc:
        summary.bad.append((text, f"cannot be read ({exc.strerror or exc})"))
        return
    seen = known.get(text)
    if seen is not None and seen[0] == stat.st_size and abs(seen[1] - stat.st_mtime) < 1e-3:
        summary.unchanged += 1
        return
    try:
        scanned = scan_file(path)
    except PipelineError as exc:
        summary.bad.append((text, str(exc).replace(f"{path}: ", "")))
        return
    frame_id = by_sha.get(scanned.sha256)
    if frame_id is not None:
        _known_content(scanned, network, frame_id, summary)
        return
    if seen is not None:  # new bytes under a known path: the old content is gone from the share
        _forget(network, text)
        summary.replaced.append(text)
    try:
        columns, reason = frame_columns(scanned)
    except PipelineError as exc:
        summary.bad.append((text, str(exc)))
        return
    if columns["image_type"] == ImageType.LIGHT and solve == "never":
        columns.update(header_astrometry(scanned, columns))
        summary.astrometry[columns["astrometry"]["method"]] += 1
    if site is None:
        info = columns["header"]
        where = (info["site_lat_deg"], info["site_lon_deg"]) if info.get("site_lat_deg") is not None and \
            info.get("site_lon_deg") is not None else None
        site = archive_site(network, None, where)
    now = timezone.now()
    frame = Frame(network=network, site=site, sha256=scanned.sha256, size_bytes=scanned.size_bytes,
                  storage_key="", original_name=path.name[:255], state=FrameState.DONE,
                  notes={"archive": f"catalogued in place from {text}"}, **columns)
    located = ArchiveFile(network=network, path=text, size_bytes=scanned.size_bytes, mtime=scanned.mtime,
                          classified_by=reason[:200], catalogued_at=now, last_seen_at=now)
    by_sha[scanned.sha256] = -1  # a second copy within this pass is a copy, not a new frame
    pending.append((frame, located))
    summary.kinds[columns["image_type"]] += 1


def _forget(network: Network, path: str) -> None:
    """Drop the location of content that was overwritten, and its frame when the portal holds
    no copy of it (a catalogue-only frame has nothing left to point at)."""
    located = ArchiveFile.objects.filter(network=network, path=path).select_related("frame").first()
    if located is None:
        return
    frame = located.frame
    located.delete()
    if not frame.storage_key:
        frame.delete()


def _known_content(scanned: ScannedFile, network: Network, frame_id: int, summary: CatalogueSummary) -> None:
    """Bytes the network holds already: a moved file, a second copy, or one already queued."""
    text = str(scanned.path)
    if frame_id == -1:
        summary.copies.append((text, "same bytes as another file of this pass"))
        return
    located = ArchiveFile.objects.filter(frame_id=frame_id).first()
    if located is None:  # uploaded through the API: record where it also lies
        ArchiveFile.objects.create(network=network, frame_id=frame_id, path=text, size_bytes=scanned.size_bytes,
                                   mtime=scanned.mtime, classified_by="already a frame (uploaded)")
        return
    if located.path != text and Path(located.path).exists():
        summary.copies.append((text, located.path))
        return
    old = located.path
    ArchiveFile.objects.filter(pk=located.pk).update(path=text, mtime=scanned.mtime, last_seen_at=timezone.now())
    if old != text:
        summary.moved.append((old, text))


def _flush(pending: list[tuple[Frame, ArchiveFile]], summary: CatalogueSummary) -> list[tuple[int, Path]]:
    if not pending:
        return []
    with transaction.atomic():
        frames = [frame for frame, _ in pending]
        network_id = frames[0].network_id
        insert_rows(Frame, frames, key="sha256", scope={"network_id": network_id})
        for frame, located in pending:
            located.frame = frame
        insert_rows(ArchiveFile, [located for _, located in pending], key="path", scope={"network_id": network_id})
    lights = [(frame.pk, Path(located.path)) for frame, located in pending if frame.image_type == ImageType.LIGHT]
    summary.new += len(pending)
    summary.frame_ids += [frame.pk for frame in frames]
    pending.clear()
    return lights


def _locate(lights: list[tuple[int, Path]], mode: str, grade: bool, summary: CatalogueSummary) -> None:
    """Sky positions for new lights, oldest first, so each pointing is solved once and propagated."""
    from observations.archive.astrometry import locate_and_grade

    frames = Frame.objects.select_related("site", "network").in_bulk([pk for pk, _ in lights])
    for pk, path in sorted(lights, key=lambda item: (frames[item[0]].observed_at, item[0])):
        updates = locate_and_grade(frames[pk], path, mode, grade=grade)
        summary.astrometry[(updates.get("astrometry") or {}).get("method", "none")] += 1
