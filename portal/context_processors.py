from django.conf import settings
from django.http import HttpRequest


def product(request: HttpRequest) -> dict[str, str]:
    return {"product_name": settings.PRODUCT_NAME, "support_href": support_href()}


def support_href() -> str:
    """Where "Contact support" links to: SUPPORT_URL, else a mailto: SUPPORT_EMAIL."""
    if settings.SUPPORT_URL:
        return settings.SUPPORT_URL
    return f"mailto:{settings.SUPPORT_EMAIL}" if settings.SUPPORT_EMAIL else ""
