"""A short, human description of a User-Agent header ("Firefox on Windows").

The security log and its e-mails only need enough for a user to think "that
was me on my laptop" or "I have never used Opera". The header is written by
whoever sends the request, so not one character of it is ever shown: ua-parser
(the maintained uap-core rules) recognises the browser and the system, and only
words from the fixed vocabulary below reach a page or an e-mail.
"""

from functools import lru_cache

import ua_parser
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from ua_parser import Domain

UNKNOWN = _("Unknown browser")
# What support's command-line tools record as the "browser" of their actions
# (accounts.middleware.ActionOrigin). A visitor may send these words too, so they
# are believed only for an event with no IP address, which no web request has.
COMMAND_LINE_AGENT = "command line (manage.py twofactor_reset)"
COMMAND_LINE = _("Command line (support)")


def describe_origin(user_agent: str, ip: str | None) -> str:
    """Where an action came from: a browser's family and system, or support's command
    line, in the active language (the names of browsers and systems are not translated)."""
    if ip is None and user_agent == COMMAND_LINE_AGENT:
        return str(COMMAND_LINE)
    return describe_user_agent(user_agent)


# ua-parser family -> the words we show. Only these families are let through,
# because uap-core's generic rules for bots and libraries take the "family"
# from the header itself: "Call +1 555 0100 now Bot/1.0" parses as the family
# "1 555 0100 now Bot", and a phone number in a security e-mail would read as
# the portal's own advice. Everything not listed (bots, scripts, curl, unknown
# or new browsers) is UNKNOWN; a new real browser is added here by hand.
BROWSERS = {
    "Brave": "Brave",
    "Chrome": "Chrome",
    "Chrome Mobile": "Chrome Mobile",
    "Chrome Mobile iOS": "Chrome Mobile",
    "Chromium": "Chromium",
    "HeadlessChrome": "Headless Chrome",  # automated browsers (and our own browser tests)
    "DuckDuckGo Mobile": "DuckDuckGo",
    "Edge": "Edge",
    "Edge Mobile": "Edge Mobile",
    "Firefox": "Firefox",
    "Firefox Focus": "Firefox Focus",
    "Firefox iOS": "Firefox Mobile",
    "Firefox Mobile": "Firefox Mobile",
    "IE": "Internet Explorer",
    "Mobile Safari": "Mobile Safari",
    "Opera": "Opera",
    "Opera Mobile": "Opera Mobile",
    "Safari": "Safari",
    "Samsung Internet": "Samsung Internet",
    "Vivaldi": "Vivaldi",
    "Yandex Browser": "Yandex Browser",
}
SYSTEMS = {
    "Android": "Android",
    "Chrome OS": "ChromeOS",
    "Debian": "Debian",
    "Fedora": "Fedora",
    "FreeBSD": "FreeBSD",
    "iOS": "iOS",
    "Linux": "Linux",
    "Mac OS X": "macOS",  # Apple's name since 2016; what users see in their settings
    "Ubuntu": "Ubuntu",
    "Windows": "Windows",
}

# The stored header is already cut to 300 characters; the bound here keeps the
# cache small for any other caller.
_PARSED_MAX = 300
# A page of the security log shows 50 events, mostly from the same few
# browsers. Measured here: a parse costs about 10 us (0.2 ms at worst), plus
# about 0.1 s once per process to load the rules; a cached one costs nothing.
# Bounded, because the keys are client-supplied.
_CACHE_SIZE = 1024


def describe_user_agent(user_agent: str) -> str:
    browser, system = _describe(user_agent[:_PARSED_MAX]) if user_agent else (None, None)
    if browser is None:
        # A known system alone ("Unknown browser on Windows") says little and
        # the rest of that header may be anything: keep it to the one phrase.
        return str(UNKNOWN)
    if system is None:
        return browser
    # Translators: a browser and its operating system, e.g. "Firefox on Windows".
    return gettext("%(browser)s on %(system)s") % {"browser": browser, "system": system}


# The parse only, cached: the words around it follow the reader's language.
@lru_cache(maxsize=_CACHE_SIZE)
def _describe(user_agent: str) -> tuple[str | None, str | None]:
    result = ua_parser.parser(user_agent, Domain.USER_AGENT | Domain.OS)
    browser = BROWSERS.get(result.user_agent.family) if result.user_agent else None
    system = SYSTEMS.get(result.os.family) if result.os else None
    return browser, system
