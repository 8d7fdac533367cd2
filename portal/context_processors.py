from django.conf import settings
from django.http import HttpRequest


def product(request: HttpRequest) -> dict[str, object]:
    return {
        "product_name": settings.PRODUCT_NAME,
        "support_href": support_href(),
        # Each language named in itself ("English", "Deutsch", "Français") on every page:
        # Django's {% get_available_languages %} would translate the names.
        "language_names": settings.LANGUAGES,
    }


def support_href() -> str:
    """Where "Contact support" links to: SUPPORT_URL, else a mailto: SUPPORT_EMAIL."""
    if settings.SUPPORT_URL:
        return settings.SUPPORT_URL
    return f"mailto:{settings.SUPPORT_EMAIL}" if settings.SUPPORT_EMAIL else ""
