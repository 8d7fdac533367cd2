from django import template

register = template.Library()


@register.filter
def unbroken(text: object) -> str:
    """`text` with no line break inside it (its spaces made no-break): a date and time
    stays whole while the sentence around it wraps in a narrow column."""
    return str(text).replace(" ", "\u00a0")
