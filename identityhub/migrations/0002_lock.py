from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("identityhub", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="Lock",
            fields=[
                ("name", models.CharField(max_length=150, primary_key=True, serialize=False)),
                ("holder", models.CharField(help_text="the holder's random token", max_length=64)),
                ("expires", models.DateTimeField()),
            ],
        ),
    ]
