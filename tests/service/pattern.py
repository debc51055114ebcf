"""The verifiable picture that the RTSP server (rtsp_server.py) and the test files (media.py)
encode, and its checks. Pure Python to draw (Debian's python3, which runs the RTSP server, has
no numpy); numpy to check (imported lazily).

Frame n (the source's own frame index, from 0) of a W x H picture (W >= 512, W and H even):

- Barcode: rows 0..15 of the luma plane, blocks 16x16 at x = 16*i for i in 0..31. Block i is
  white (Y 235) or black (Y 16): blocks 0..15 hold n mod 65536 (most significant bit first),
  blocks 16..31 its complement, so a misread or foreign picture does not decode.
- Background (every luma sample outside the barcode and the box): a diagonal sawtooth that moves
  with n: Y[r][c] = 40 + (c + 2*r + 4*n) mod 64 (40..103), plus noise in the files.
- Box: 32x32 luma 235 at box_pos(n); its chroma (16x16 samples) U = 64, V = 200; everywhere
  else U = V = 128.

A decoder shows its frame is frame n by: the barcode reads n (with a valid complement), the
box's inner 24x24 is bright and its chroma is (64, 200), and the background at fixed probes
matches the sawtooth of n. The 10-bit files hold the same values times 4 (P010 output then
carries them in the top 8 bits: sample >> 8).
"""

from __future__ import annotations

from typing import Any, Optional

BLOCK = 16
BITS = 16
NBLOCKS = 2 * BITS
MIN_WIDTH = BLOCK * NBLOCKS  # 512
BOX = 32
BLACK, WHITE = 16, 235
BOX_Y, BOX_U, BOX_V = 235, 64, 200


def barcode_bits(n: int) -> list[int]:
    v = n % (1 << BITS)
    bits = [(v >> (BITS - 1 - i)) & 1 for i in range(BITS)]
    return bits + [1 - b for b in bits]


def box_pos(n: int, width: int, height: int) -> tuple[int, int]:
    """Top-left corner of the box in frame n: even, below the barcode, inside the picture."""
    x = 8 * n % (width - BOX)
    y = 24 + 4 * n % (height - BOX - 24)
    return x & ~1, y & ~1


def background_value(r: int, c: int, n: int) -> int:
    return 40 + (c + 2 * r + 4 * n) % 64


def check_geometry(width: int, height: int) -> None:
    if width < MIN_WIDTH or width % 2 or height % 2 or height < BOX + 64:
        raise ValueError(f"pattern needs an even width >= {MIN_WIDTH} and an even height >= 96,"
                         f" not {width}x{height}")


def draw_i420(n: int, width: int, height: int) -> bytes:
    """Frame n as I420 (Y plane, then U, then V), in pure Python."""
    check_geometry(width, height)
    saw = bytes(40 + i % 64 for i in range(width + 64))
    rows = []
    for r in range(height):
        off = (2 * r + 4 * n) % 64
        rows.append(saw[off:off + width])
    bar = b"".join((bytes([WHITE]) if b else bytes([BLACK])) * BLOCK for b in barcode_bits(n))
    for r in range(BLOCK):
        rows[r] = bar + rows[r][len(bar):]
    bx, by = box_pos(n, width, height)
    for r in range(by, by + BOX):
        rows[r] = rows[r][:bx] + bytes([BOX_Y]) * BOX + rows[r][bx + BOX:]
    cw, ch = width // 2, height // 2
    u_rows = [bytes([128]) * cw for _ in range(ch)]
    v_rows = list(u_rows)
    for r in range(by // 2, (by + BOX) // 2):
        u_rows[r] = bytes([128]) * (bx // 2) + bytes([BOX_U]) * (BOX // 2) + \
            bytes([128]) * (cw - bx // 2 - BOX // 2)
        v_rows[r] = bytes([128]) * (bx // 2) + bytes([BOX_V]) * (BOX // 2) + \
            bytes([128]) * (cw - bx // 2 - BOX // 2)
    return b"".join(rows) + b"".join(u_rows) + b"".join(v_rows)


# ---- checks (numpy) ----------------------------------------------------------------------

def _to8(plane: Any) -> Any:
    import numpy as np
    if plane.dtype == np.uint16:  # P010: 10-bit value << 6; its top 8 bits are the 8-bit value
        return (plane >> 8).astype(np.uint8)
    return plane


def read_barcode(y: Any) -> Optional[int]:
    """The frame index in the barcode of a luma plane (uint8, or P010 uint16), or None when the
    blocks do not read as a valid code (a block neither clearly black nor white, or a wrong
    complement)."""
    import numpy as np
    y8 = _to8(y)
    if y8.shape[1] < MIN_WIDTH or y8.shape[0] < BLOCK:
        return None
    bits = []
    for i in range(NBLOCKS):
        m = float(np.mean(y8[4:12, i * BLOCK + 4:i * BLOCK + 12], dtype=np.float64))
        if m > 170:
            bits.append(1)
        elif m < 80:
            bits.append(0)
        else:
            return None
    if any(bits[i] == bits[BITS + i] for i in range(BITS)):
        return None
    v = 0
    for b in bits[:BITS]:
        v = (v << 1) | b
    return v


def check_picture(y: Any, uv: Any, n: int, noisy: bool = False) -> Optional[str]:
    """None when planes y (H, W) and uv (H/2, W) (NV12 interleaved; uint8 or P010 uint16) show
    frame n; else what is wrong. Tolerant of lossy coding (means over areas, not exact bytes)."""
    import numpy as np
    y8, uv8 = _to8(y), _to8(uv)
    h, w = y8.shape
    if uv8.shape != (h // 2, w):
        return f"uv plane shape {uv8.shape}, expected {(h // 2, w)}"
    code = read_barcode(y8)
    if code != n % (1 << BITS):
        return f"barcode reads {code}, expected {n % (1 << BITS)}"
    bx, by = box_pos(n, w, h)
    inner = y8[by + 4:by + BOX - 4, bx + 4:bx + BOX - 4]
    if float(inner.mean()) < 200:
        return f"box luma at ({bx},{by}) is {float(inner.mean()):.0f}, expected ~{BOX_Y}"
    cu = uv8[by // 2 + 2:(by + BOX) // 2 - 2, bx + 4:bx + BOX - 4]  # interleaved U,V columns
    u, v = float(cu[:, 0::2].mean()), float(cu[:, 1::2].mean())
    if abs(u - BOX_U) > 20 or abs(v - BOX_V) > 20:
        return f"box chroma at ({bx},{by}) is U={u:.0f} V={v:.0f}, expected {BOX_U},{BOX_V}"
    # Background: a few rows of the sawtooth away from the box and the barcode. Its best match
    # must be at offset 0 (a picture shifted by a column, or by a row = 2 columns, matches the
    # shifted sawtooth better, noise or not), and close (mean absolute difference).
    rows = [r for r in (24, h // 3, h // 2 - 8, h - 24) if not by - 8 <= r < by + BOX + 8]
    c = np.arange(8, w - 8)
    got = y8[rows, 8:w - 8].astype(np.int32)
    rr = np.array(rows)[:, None]
    err = {s: float(np.abs(got - (40 + (c + s + 2 * rr + 4 * n) % 64)).mean())
           for s in range(-3, 4)}
    best = min(err, key=lambda s: err[s])
    if best != 0 or err[0] > (6 if noisy else 3):
        return (f"background rows {rows} match frame {n}'s sawtooth shifted by {best} columns "
                f"best (mean abs difference {err[best]:.2f}; unshifted {err[0]:.2f})")
    # Chroma away from the box is neutral.
    for r in (4, h // 4 - 2, h // 2 - 4):
        if not by // 2 - 4 <= r < (by + BOX) // 2 + 4:
            m = float(uv8[r].mean())
            if abs(m - 128) > 10:
                return f"chroma row {r} averages {m:.0f}, expected 128"
    return None
