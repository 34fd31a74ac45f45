from django.contrib.admin.apps import AdminConfig


class OperatorsAdminConfig(AdminConfig):
    """Django's admin, with our site (a dashboard on the index) as the default site."""

    default_site = "config.admin_site.OperatorsAdminSite"
