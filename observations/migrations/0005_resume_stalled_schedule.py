"""Schedule pipeline.resume_stalled every 15 minutes with django-celery-beat (editable in the admin)."""
from django.db import migrations

TASK_NAME = "Resume stalled frames (frame pipeline)"


def schedule(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every, _ = IntervalSchedule.objects.get_or_create(every=15, period="minutes")
    PeriodicTask.objects.get_or_create(name=TASK_NAME, defaults={"task": "pipeline.resume_stalled",
                                                                 "interval": every, "kwargs": '{"older_than_minutes": 30}'})


def unschedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=TASK_NAME).delete()


class Migration(migrations.Migration):
    dependencies = [("observations", "0004_frame_q3c_index"), ("django_celery_beat", "0019_alter_periodictasks_options")]
    operations = [migrations.RunPython(schedule, unschedule)]
