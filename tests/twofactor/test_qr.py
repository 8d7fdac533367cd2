"""The enrollment QR code (twofactor/qr.py): what a phone reads off the inline PNG.

The browser journeys (tests/e2e) decode a screenshot of the image as the page shows it;
these read the PNG itself.
"""

import base64
import io

import pytest
import zxingcpp
from PIL import Image

from twofactor import otp
from twofactor.qr import QUIET_ZONE, qr_png_data_uri

PREFIX = "data:image/png;base64,"
# The short address of the test users and one long enough for the largest symbol we draw.
EMAILS = ["ann@example.com", "alexandra.konstantinopoulou-wetherby@customer-support.example.com"]


def _uri(email: str) -> str:
    return otp.provisioning_uri(
        secret=otp.generate_secret(), account_name=email, issuer="Customer Portal"
    )


def _image(data_uri: str) -> Image.Image:
    assert data_uri.startswith(PREFIX)
    return Image.open(io.BytesIO(base64.b64decode(data_uri.removeprefix(PREFIX), validate=True)))


@pytest.mark.parametrize("email", EMAILS)
def test_qr_png_decodes_back_to_the_otpauth_uri(email):
    uri = _uri(email)
    results = zxingcpp.read_barcodes(
        _image(qr_png_data_uri(uri)), formats=zxingcpp.BarcodeFormat.QRCode
    )
    assert [result.text for result in results] == [uri]


def test_qr_keeps_error_correction_m():
    # Level M survives 15 % of the modules misread (glare, a dirty lens); L would only 7 %.
    (result,) = zxingcpp.read_barcodes(
        _image(qr_png_data_uri(_uri(EMAILS[1]))), formats=zxingcpp.BarcodeFormat.QRCode
    )
    assert result.ec_level == "M"


def test_qr_has_a_white_quiet_zone_of_four_modules():
    image = _image(qr_png_data_uri(_uri(EMAILS[0]))).convert("L")
    side = image.width
    assert image.height == side
    # One pixel per module: the quiet zone is the outer four pixels on every side.
    border = [
        image.getpixel((x, y))
        for x in range(side)
        for y in range(side)
        if min(x, y, side - 1 - x, side - 1 - y) < QUIET_ZONE
    ]
    assert set(border) == {255}
    # and the symbol starts right inside it, with the dark corner of a finder pattern
    assert image.getpixel((QUIET_ZONE, QUIET_ZONE)) == 0
