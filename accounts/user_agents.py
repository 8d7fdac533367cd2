"""A short, human description of a User-Agent header ("Firefox on Windows").

Deliberately small: the security log only needs enough for a user to think
"that was me on my laptop" or "I have never used Opera". Order matters because
browsers imitate each other (Edge says Chrome and Safari; Chrome says Safari).
"""

_BROWSERS = [
    ("Edg/", "Edge"),
    ("EdgA/", "Edge"),
    ("OPR/", "Opera"),
    ("SamsungBrowser/", "Samsung Internet"),
    ("Firefox/", "Firefox"),
    ("FxiOS/", "Firefox"),
    ("CriOS/", "Chrome"),
    ("Chromium/", "Chromium"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
    ("curl/", "curl"),
]

_SYSTEMS = [
    ("iPhone", "iPhone"),
    ("iPad", "iPad"),
    ("Android", "Android"),
    ("CrOS", "ChromeOS"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("Macintosh", "macOS"),
    ("Linux", "Linux"),
]

UNKNOWN = "Unknown browser"
_PLAIN_MAX = 40


def describe_user_agent(user_agent: str) -> str:
    if not user_agent:
        return UNKNOWN
    browser = next((name for marker, name in _BROWSERS if marker in user_agent), None)
    system = next((name for marker, name in _SYSTEMS if marker in user_agent), None)
    if browser and system:
        return f"{browser} on {system}"
    if browser or system:
        return browser or system
    if user_agent.startswith("Mozilla/"):
        return UNKNOWN
    # Not a browser (the command line, a script): show its own words, briefly.
    return user_agent[:_PLAIN_MAX]
