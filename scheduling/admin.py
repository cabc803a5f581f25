"""Admin actions on sites for the scheduler: recompute lists now, download tonight's tasking."""
from __future__ import annotations

from django.contrib import admin, messages
from django.http import HttpResponse

from scheduling.exports import TaskingError
from scheduling.passes import run_network_pass
from scheduling.tasking import tasking_for_site, zip_files
from sites.admin import SiteAdmin


@admin.action(description="Recompute the ranked lists of the selected sites' networks now")
def recompute_schedule(modeladmin, request, queryset):
    for network_id in sorted(set(queryset.values_list("network_id", flat=True))):
        result = run_network_pass(network_id)
        entries = sum(len(s.entries) for s in result.sites.values())
        modeladmin.message_user(request, f"Network {network_id}: {len(result.sites)} site lists, {entries} entries "
                                         f"in {result.stats['total_s']:.2f} s.")


def _download(modeladmin, request, queryset, fmt: str):
    files: dict[str, str] = {}
    for site in queryset.select_related("network"):
        try:
            _, site_files = tasking_for_site(site, fmt)
        except TaskingError as exc:
            modeladmin.message_user(request, f"{site}: {exc}", messages.WARNING)
            continue
        files.update({f"site{site.pk}-{site.name}/{name}": text for name, text in site_files.items()})
    if not files:
        return None
    response = HttpResponse(zip_files(files), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="tasking-{fmt}.zip"'
    return response


@admin.action(description="Download tonight's tasking for KStars/Ekos (.esl + .esq, zipped)")
def download_ekos_tasking(modeladmin, request, queryset):
    return _download(modeladmin, request, queryset, "ekos")


@admin.action(description="Download tonight's tasking as CSV (zipped)")
def download_csv_tasking(modeladmin, request, queryset):
    return _download(modeladmin, request, queryset, "csv")


# The scheduler's actions on the site admin (sites/ knows nothing of the scheduler).
SiteAdmin.actions = [*SiteAdmin.actions, recompute_schedule, download_ekos_tasking, download_csv_tasking]
