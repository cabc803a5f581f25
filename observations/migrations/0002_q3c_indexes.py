"""Q3C spherical index on observation positions (PostgreSQL only)."""
from django.db import migrations

from network.db import q3c_index


class Migration(migrations.Migration):
    dependencies = [("observations", "0001_initial"), ("network", "0002_q3c_extension")]
    operations = [q3c_index("observations_observation", "observation_q3c_idx")]
