# Django's German formats, with the zone's abbreviation on every time.
DATE_FORMAT = "j. F Y"
DATETIME_FORMAT = "j. F Y, H:i T"
TIME_FORMAT = "H:i T"
