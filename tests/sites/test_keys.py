"""Site keys: shown once, stored hashed, revocable, several per site."""
import pytest
from django.db import connection

from sites.models import SiteKey
from sites.services import KeyRejected, authenticate_site_key, issue_site_key, revoke_site_key
from tests.network.factories import make_network, make_site

pytestmark = pytest.mark.django_db


def all_database_text() -> str:
    """Every table's rows as text, to prove a secret is nowhere in the database."""
    chunks = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT * FROM "{table}"')
            chunks.extend(repr(row) for row in cursor.fetchall())
    return "\n".join(chunks)


def test_key_is_stored_only_as_a_hash():
    site = make_site(make_network())
    issued = issue_site_key(site, label="observatory PC")
    secret = issued.plaintext.split("_", 2)[2]
    text = all_database_text()
    assert issued.plaintext not in text
    assert secret not in text
    assert issued.key.digest in text  # the hash is there, and is not the key
    assert len(issued.key.digest) == 64 and issued.key.digest not in issued.plaintext


def test_key_authenticates_its_site_and_records_use():
    site = make_site(make_network())
    issued = issue_site_key(site)
    key = authenticate_site_key(issued.plaintext)
    assert key.site == site
    assert SiteKey.objects.get(pk=key.pk).last_used_at is not None


def test_rotation_keeps_old_key_until_revoked():
    site = make_site(make_network())
    old, new = issue_site_key(site), issue_site_key(site)
    assert authenticate_site_key(old.plaintext).site == site
    revoke_site_key(old.key)
    with pytest.raises(KeyRejected, match="revoked"):
        authenticate_site_key(old.plaintext)
    assert authenticate_site_key(new.plaintext).site == site


@pytest.mark.parametrize("presented", ["", "nonsense", "dsk_short_x", "dut_0123456789ab_secret"])
def test_malformed_or_wrong_kind_keys_are_rejected(presented):
    with pytest.raises(KeyRejected):
        authenticate_site_key(presented)


def test_tampered_secret_is_rejected():
    issued = issue_site_key(make_site(make_network()))
    with pytest.raises(KeyRejected, match="unknown"):
        authenticate_site_key(issued.plaintext[:-2] + "xx")


def test_deactivated_site_cannot_authenticate():
    site = make_site(make_network())
    issued = issue_site_key(site)
    site.is_active = False
    site.save()
    with pytest.raises(KeyRejected, match="deactivated"):
        authenticate_site_key(issued.plaintext)


def test_personal_tokens_are_stored_only_as_a_hash():
    from network.services import authenticate_user_token, issue_user_token
    from tests.network.factories import make_user

    user = make_user()
    issued = issue_user_token(user, label="ingest")
    assert issued.plaintext not in all_database_text()
    assert authenticate_user_token(issued.plaintext).user == user
