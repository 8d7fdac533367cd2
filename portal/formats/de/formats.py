# Django's German formats, with the zone's abbreviation on every time.
DATE_FORMAT = "j. F Y"
DATETIME_FORMAT = "j. F Y, H:i T"
TIME_FORMAT = "H:i T"
# Tables (All users): the short German form, so columns stay narrow ("02.12.2026").
SHORT_DATE_FORMAT = "d.m.Y"
SHORT_DATETIME_FORMAT = "d.m.Y, H:i T"
