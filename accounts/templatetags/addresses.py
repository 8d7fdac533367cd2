from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString

register = template.Library()


@register.filter
def break_after_at(email: str) -> SafeString:
    """The address with a line-break opportunity after its "@": a narrow column wraps it
    as "ann@ / example.com" rather than inside a word ("example.co / m")."""
    local, at, domain = str(email).rpartition("@")
    if not at:
        return format_html("{}", email)
    return format_html("{}@<wbr>{}", local, domain)
