"""The backoffice roles as Django groups, with their model permissions. A user's rights are
its groups' (and its own); `is_staff` only lets it open the admin; superusers have every
right. The table is docs/SECURITY.md's "Roles"."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

SUPPORT = [
    # Read orders and couriers, and where they are.
    "orders.view_order", "orders.view_orderevent", "orders.view_notification",
    "couriers.view_courier", "couriers.view_apitoken",
    "tracking.view_orderlastlocation", "tracking.view_courierlastlocation",
    # Send a failed notification again; log a courier out of the app.
    "orders.resend_notification", "couriers.revoke_courier_tokens",
]  # fmt: skip
ROLES = {
    "Support": SUPPORT,
    "Operations lead": [*SUPPORT, "couriers.add_courier", "couriers.change_courier", "orders.cancel_order"],
    "Engineer": [
        "tracking.view_ping", "tracking.view_pingevent",
        "tracking.view_pingdeadletter", "tracking.view_pingbatchdeadletter", "tracking.replay_dead_letters",
        "tracking.view_metrics",
    ],
}  # fmt: skip


def roles_create(apps, schema_editor):
    """Steps: make every app's permissions now (Django makes them after `migrate`, too late
    for a new database); then each group with exactly its role's permissions."""
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    group_model, permission_model = apps.get_model("auth", "Group"), apps.get_model("auth", "Permission")
    for name, perms in ROLES.items():
        group, _ = group_model.objects.get_or_create(name=name)
        found = [
            permission_model.objects.get(content_type__app_label=perm.split(".")[0], codename=perm.split(".")[1])
            for perm in perms
        ]
        group.permissions.set(found)


def roles_delete(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("couriers", "0003_courier_permissions"),
        ("orders", "0002_order_permissions"),
        ("tracking", "0009_analytics_views_drop"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="ping",
            options={"permissions": [("view_metrics", "Can read the process metrics")]},
        ),
        migrations.AlterModelOptions(
            name="pingdeadletter",
            options={"permissions": [("replay_dead_letters", "Can replay dead letters")]},
        ),
        migrations.RunPython(roles_create, roles_delete),
    ]
