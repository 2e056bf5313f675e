"""The sync lock rows move to the hub-wide identityhub.Lock (name ``sync:<nas id>``, as the Redis keys).

A lock held while this migration runs (a sync still running in an old process) is carried over with its
holder and expiry, so a new process does not start a second sync of that NAS meanwhile.
"""

from django.db import migrations


def forwards(apps, schema_editor):
    SyncLock = apps.get_model("synology", "SyncLock")
    Lock = apps.get_model("identityhub", "Lock")
    Lock.objects.bulk_create(
        [Lock(name=f"sync:{row.nas_id}", holder=row.holder, expires=row.expires) for row in SyncLock.objects.all()],
        ignore_conflicts=True,
    )


def backwards(apps, schema_editor):
    SyncLock = apps.get_model("synology", "SyncLock")
    Lock = apps.get_model("identityhub", "Lock")
    SyncLock.objects.bulk_create(
        [
            SyncLock(nas_id=row.name.removeprefix("sync:")[:64], holder=row.holder, expires=row.expires)
            for row in Lock.objects.filter(name__startswith="sync:")
        ],
        ignore_conflicts=True,
    )


class Migration(migrations.Migration):

    dependencies = [
        ("synology", "0001_initial"),
        ("identityhub", "0002_lock"),
    ]

    operations = [
        migrations.RunPython(forwards, backwards),
        migrations.DeleteModel(name="SyncLock"),
    ]
