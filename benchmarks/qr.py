"""QR code for the enrollment dialog: PNG (twofactor/qr.py today) vs SVG, for the real otpauth URI.

    .venv/bin/python benchmarks/qr.py [--rounds 200]

Prints the time per render and the size of each data: URI, and checks that the
PNG decodes back to the URI with zxing-cpp. The SVG is not decoded: nothing in
the environment rasterises SVG (no cairosvg), so its quality is not measured.
"""

import argparse
import base64
import io
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
os.environ.setdefault("DEBUG", "1")

import django  # noqa: E402

django.setup()

import qrcode  # noqa: E402
import qrcode.image.svg  # noqa: E402
from qrcode.constants import ERROR_CORRECT_M  # noqa: E402

from twofactor import otp  # noqa: E402
from twofactor.qr import qr_png_data_uri  # noqa: E402


def svg_data_uri(text: str) -> str:
    qr = qrcode.QRCode(
        error_correction=ERROR_CORRECT_M,
        box_size=6,
        border=4,
        image_factory=qrcode.image.svg.SvgPathImage,
    )
    qr.add_data(text)
    qr.make(fit=True)
    buffer = io.BytesIO()
    qr.make_image().save(buffer)
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def time_per_call(render, text: str, rounds: int) -> list[float]:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        render(text)
        samples.append(time.perf_counter() - start)
    return samples


def png_decodes_to(uri: str, expected: str) -> bool:
    import zxingcpp
    from PIL import Image

    image = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
    results = zxingcpp.read_barcodes(image)
    return any(result.text == expected for result in results)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    uri = otp.provisioning_uri(
        secret=otp.generate_secret(),
        account_name="ann.example@example.com",
        issuer="Customer Portal",
    )
    print(f"otpauth URI: {len(uri)} characters; {args.rounds} renders each")
    results = {}
    for name, render in (("PNG", qr_png_data_uri), ("SVG", svg_data_uri)):
        render(uri)  # warm-up
        samples = time_per_call(render, uri, args.rounds)
        results[name] = statistics.median(samples)
        print(
            f"{name}: median {results[name] * 1000:.2f} ms, p90 "
            f"{statistics.quantiles(samples, n=10)[-1] * 1000:.2f} ms, "
            f"data: URI {len(render(uri))} bytes"
        )
    print(f"SVG/PNG time ratio: {results['SVG'] / results['PNG']:.2f}")
    decodes = png_decodes_to(qr_png_data_uri(uri), uri)
    print(f"PNG decodes back to the URI with zxing-cpp: {decodes}")
    print("SVG decode: not checked (no SVG rasteriser installed)")


if __name__ == "__main__":
    main()
