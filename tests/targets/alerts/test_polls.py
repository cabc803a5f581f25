"""Gaia and TNS polls through the one HTTP client, against a local server replaying recorded answers."""
import datetime as dt
import io
import json
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest

from targets.alerts.http import AlertHttpClient, FeedHttpError
from targets.alerts.polls import PollError, ensure_poll_entries, poll_source
from targets.alerts.sources.tns import TnsSource
from targets.models import Alert, AlertFeed, AlertRule
from tests.network.factories import make_network

pytestmark = pytest.mark.django_db


class Recorded(BaseHTTPRequestHandler):
    """Serves ``self.server.routes[path]`` (bytes or a callable of the form) and logs each request."""

    def _answer(self, form: dict) -> None:
        self.server.requests.append((self.command, self.path, dict(self.headers), form))
        route = self.server.routes.get(self.path.split("?")[0])
        if route is None:
            self.send_response(404)
            self.end_headers()
            return
        body = route(form) if callable(route) else route
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._answer({})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        self._answer({k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()})

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Recorded)
    httpd.routes, httpd.requests = {}, []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    httpd.url = f"http://127.0.0.1:{httpd.server_port}"
    yield httpd
    httpd.shutdown()


@pytest.fixture
def network():
    network = make_network("Pollers", slug="pollers")
    AlertRule.objects.create(network=network, name="Gaia and TNS", sources=["Gaia", "TNS"])
    return network


def test_gaia_poll_is_incremental(server, network, samples, settings):
    csv = (samples / "gaia_alerts_head.csv").read_bytes()
    server.routes["/alerts.csv"] = csv
    settings.DATAS_GAIA_ALERTS_URL = f"{server.url}/alerts.csv"
    poll_source("gaia")
    assert Alert.objects.filter(network=network, source="Gaia").count() == 15
    feed = AlertFeed.objects.get(name="poll-gaia")
    assert (feed.cursor, feed.status, feed.alerts) == ("2022-07-16 09:53:42", "ok", 15)
    poll_source("gaia")
    assert AlertFeed.objects.get(name="poll-gaia").alerts == 15  # nothing newer: nothing parsed as new
    header, rest = csv.split(b"\n", 1)
    newer = b"Gaia22cxu,2022-07-16 01:00:00,10.0,20.0,17.1,,,\"unknown\",2022-07-17 08:00:00,\"new\",AT2022oxx\n"
    server.routes["/alerts.csv"] = header + b"\n" + newer + rest
    poll_source("gaia")
    assert Alert.objects.filter(network=network, source="Gaia").count() == 16
    assert AlertFeed.objects.get(name="poll-gaia").cursor == "2022-07-17 08:00:00"
    assert all(h["User-Agent"].startswith("tns_marker{") for _, _, h, _ in server.requests)


def test_gaia_poll_failure_is_recorded(server, network, settings):
    settings.DATAS_GAIA_ALERTS_URL = f"{server.url}/missing.csv"
    with pytest.raises(PollError, match="HTTP 404"):
        poll_source("gaia")
    feed = AlertFeed.objects.get(name="poll-gaia")
    assert feed.status == "error" and "404" in feed.last_error and feed.cursor == ""


def tns_zip(samples) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("tns_public_objects.csv", (samples / "tns_public_objects_sample.csv").read_bytes())
    return out.getvalue()


def test_tns_poll_fetches_daily_deltas_with_the_bot_marker(server, network, samples, settings):
    settings.DATAS_TNS_URL, settings.DATAS_TNS_API_KEY = server.url, "secret-key"
    settings.DATAS_TNS_BOT_ID, settings.DATAS_TNS_BOT_NAME = 12345, "datas_test"
    yesterday = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    stamp = yesterday.strftime("%Y%m%d")
    server.routes[f"/system/files/tns_public_objects/tns_public_objects_{stamp}.csv.zip"] = tns_zip(samples)
    AlertFeed.objects.create(name="poll-tns", kind="poll", source="tns",
                             cursor=(yesterday - dt.timedelta(days=1)).strftime("%Y%m%d"))
    poll_source("tns")
    alerts = Alert.objects.filter(network=network, source="TNS").order_by("event_id")
    assert [(a.event_id, a.ra_deg, a.dec_deg) for a in alerts] == [("2024aaa", 10.0, 10.0), ("2024xyz", 180.0, -30.0)]
    method, path, headers, form = server.requests[-1]
    assert method == "POST" and form == {"api_key": "secret-key"}
    assert headers["User-Agent"] == 'tns_marker{"tns_id":12345,"type":"bot","name":"datas_test"}'
    assert AlertFeed.objects.get(name="poll-tns").cursor == stamp
    requests_before = len(server.requests)
    poll_source("tns")  # up to date: asks for nothing
    assert len(server.requests) == requests_before


def test_tns_errors_inside_http_200_bodies(server, samples, settings):
    settings.DATAS_TNS_URL = server.url
    envelope = json.loads((samples / "tns_get_object_examples.json").read_bytes())["tns_api2_envelope_example"]

    def get_object(form):
        wanted = json.loads(form["data"])["objname"]
        if wanted == "2004eo":
            return json.dumps(envelope).encode()
        return json.dumps({"id_code": 404, "id_message": "No results found", "data": {}}).encode()

    server.routes["/api/get/object"] = get_object
    client = AlertHttpClient()
    alert = TnsSource().get_object(client, "2004eo")
    assert (alert.event_name, alert.ra_deg, alert.classification) == ("SN 2004eo", 308.22579, {"SN Ia": 1.0})
    with pytest.raises(FeedHttpError, match="404 No results found"):
        TnsSource().get_object(client, "2099zzz")


def test_beat_entries_only_for_the_sources_asked(settings):
    from django_celery_beat.models import PeriodicTask

    from network.celery import app
    settings.DATAS_ALERT_POLL_SOURCES = []
    ensure_poll_entries()
    assert not PeriodicTask.objects.filter(name__startswith="Alert poll").exists()
    settings.DATAS_ALERT_POLL_SOURCES = ["gaia", "tns"]
    ensure_poll_entries()
    entries = PeriodicTask.objects.filter(name__startswith="Alert poll").order_by("name")
    assert [(e.name, e.args) for e in entries] == [("Alert poll: gaia", '["gaia"]'), ("Alert poll: tns", '["tns"]')]
    app.loader.import_default_modules()  # what a worker does at start: the apps' tasks modules
    assert entries[0].task in app.tasks
