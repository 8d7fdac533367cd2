from django import template

from accounts.user_agents import describe_user_agent

register = template.Library()


@register.filter
def browser_name(user_agent: str) -> str:
    """ "Firefox on Windows": only words from accounts.user_agents' vocabulary, never the header."""
    return describe_user_agent(user_agent)
