# The portal's newest frames and its week of data quality are read by upload time per network.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('observations', '0007_mover_candidates'),
    ]

    operations = [
        migrations.AddIndex(
            model_name='frame',
            index=models.Index(fields=['network', 'uploaded_at'], name='frame_network_upload_idx'),
        ),
    ]
