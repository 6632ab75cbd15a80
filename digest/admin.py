"""Admin autodiscovery imports this module; the admin itself lives in digest/desk/admin/."""

from digest.desk import admin  # noqa: F401 - registers the digest models
