from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("simulations", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="simulation",
            name="early_stop",
            field=models.JSONField(blank=True, null=True),
        ),
    ]
