from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0004_quota_limits_command_key"),
    ]

    operations = [
        migrations.AddField(
            model_name="quota",
            name="max_storage_bytes",
            field=models.PositiveBigIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="quota",
            name="max_run_memory_bytes",
            field=models.PositiveBigIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="quota",
            name="max_run_cpus",
            field=models.FloatField(blank=True, null=True),
        ),
    ]
