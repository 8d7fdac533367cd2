"""The enrollment QR code, as an inline data: URI (never a URL of its own)."""

import base64
import struct
import zlib

import segno

# Light modules around the symbol on each side: ISO/IEC 18004's minimum quiet zone.
QUIET_ZONE = 4

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# segno's matrix holds 0x1 for a dark module and 0x0 for a light one; as 8-bit grayscale
# pixels that is black (0x00) and white (0xff).
_MODULE_TO_GRAY = bytes.maketrans(b"\x00\x01", b"\xff\x00")


def qr_png_data_uri(text: str) -> str:
    # segno scores all eight masks as ISO/IEC 18004 7.8.3 asks (most of the render time,
    # and worth it: the best mask is the easiest to scan). Error correction M as before;
    # boost_error=False keeps it at M (trying higher levels that fit costs ~2 ms more).
    code = segno.make_qr(text, error="m", boost_error=False)
    png = _grayscale_png(code.matrix)
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _grayscale_png(matrix: tuple[bytearray, ...]) -> bytes:
    """One pixel per module. The page shows the image at a fixed size and the stylesheet
    scales it with `image-rendering: pixelated`, so the modules keep sharp edges. Written
    here because segno's PNG writer takes about 1 ms of a 10 ms budget and this 0.05 ms."""
    side = len(matrix) + 2 * QUIET_ZONE
    quiet = b"\xff" * QUIET_ZONE
    blank_row = b"\x00" + b"\xff" * side  # each scanline starts with filter type 0 (None)
    rows = [b"\x00" + quiet + row.translate(_MODULE_TO_GRAY) + quiet for row in matrix]
    scanlines = b"".join([blank_row] * QUIET_ZONE + rows + [blank_row] * QUIET_ZONE)
    # Level 1: the image is runs of two values; harder compression saves ~200 bytes of a
    # ~1 KB image and costs several times the time.
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)  # 8-bit grayscale
    return b"".join(
        (
            _PNG_SIGNATURE,
            _png_chunk(b"IHDR", header),
            _png_chunk(b"IDAT", zlib.compress(scanlines, 1)),
            _png_chunk(b"IEND", b""),
        )
    )


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
