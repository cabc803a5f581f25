"""Q3C spherical indexes for cone search and cross-match (PostgreSQL only)."""
from django.db import migrations

from network.db import q3c_index


class Migration(migrations.Migration):
    dependencies = [("targets", "0001_initial"), ("network", "0002_q3c_extension")]
    operations = [
        q3c_index("targets_target", "target_q3c_idx"),
        q3c_index("targets_alert", "alert_q3c_idx"),
    ]
