from django import template
from django.utils import timezone

from digest.desk.dashboard import dashboard

register = template.Library()


@register.inclusion_tag("admin/digest/dashboard.html", takes_context=True)
def paperboy_dashboard(context) -> dict:
    """The dashboard on the admin index, for staff who may see papers and deliveries."""
    user = context["request"].user
    if not user.has_perms(["digest.view_paper", "digest.view_delivery"]):
        return {"visible": False}
    return {"visible": True, **dashboard(timezone.now())}
