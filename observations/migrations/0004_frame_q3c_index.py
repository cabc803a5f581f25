"""Q3C spherical index on frame centres (PostgreSQL only)."""
from django.db import migrations

from network.db import q3c_index


class Migration(migrations.Migration):
    dependencies = [("observations", "0003_frame"), ("network", "0002_q3c_extension")]
    operations = [q3c_index("observations_frame", "frame_q3c_idx")]
