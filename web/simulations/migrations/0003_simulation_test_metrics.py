"""Final test metrics as a stored field (the status projection writes it).

No data migration: rows finished before it keep a null column, and the readers fall back to
the metrics in their message (web/simulations/summary.py, final_test_metrics).
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("simulations", "0002_simulation_early_stop"),
    ]

    operations = [
        migrations.AddField(
            model_name="simulation",
            name="test_metrics",
            field=models.JSONField(blank=True, null=True),
        ),
    ]
