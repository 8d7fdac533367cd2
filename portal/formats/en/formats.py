# English as the portal has always written it ("2 Dec 2026, 06:09 UTC"); every time
# carries its zone's abbreviation, because the reader's zone is not the server's.
DATE_FORMAT = "j M Y"
DATETIME_FORMAT = "j M Y, H:i T"
TIME_FORMAT = "H:i T"
# Tables (All users): the same, as English needs no shorter form.
SHORT_DATE_FORMAT = "j M Y"
SHORT_DATETIME_FORMAT = "j M Y, H:i T"
