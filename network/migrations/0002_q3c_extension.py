"""The Q3C extension on PostgreSQL (a no-op elsewhere); the spherical indexes depend on it."""
from django.db import migrations

from network.db import CreateQ3CExtension


class Migration(migrations.Migration):
    dependencies = [("network", "0001_initial")]
    operations = [CreateQ3CExtension()]
