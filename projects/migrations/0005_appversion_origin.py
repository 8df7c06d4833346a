from django.db import migrations, models

ORIGINS = [("web", "Web"), ("api", "API"), ("cli", "CLI"), ("explorer", "Explorer")]


def origins_from_history(apps, schema_editor):
    """Give each version published before origins were kept the door its history row names.

    Until now only the API published versions: a version without a row keeps "api".
    """
    AppVersion = apps.get_model("projects", "AppVersion")
    AuditEvent = apps.get_model("accounts", "AuditEvent")
    published = AuditEvent.objects.filter(action="app.published", target_type="app").exclude(
        origin="api"
    )
    for target_id, detail, origin in published.values_list("target_id", "detail", "origin"):
        version = (detail or {}).get("version")
        if target_id.isdigit() and isinstance(version, int):
            AppVersion.objects.filter(app_id=int(target_id), version=version).update(origin=origin)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0004_origin_explorer"),
        ("projects", "0004_origin_explorer"),
    ]

    operations = [
        migrations.AddField(
            model_name="appversion",
            name="origin",
            field=models.CharField(choices=ORIGINS, default="api", max_length=10),
        ),
        migrations.AlterField(
            model_name="appversion",
            name="origin",
            field=models.CharField(choices=ORIGINS, default="web", max_length=10),
        ),
        migrations.RunPython(origins_from_history, migrations.RunPython.noop),
    ]
