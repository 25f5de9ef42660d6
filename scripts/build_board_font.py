"""Rebuild `hub/board/cjk.woff2`: Droid Sans Fallback (Apache License 2.0, Debian `fonts-droid-fallback`)
cut down to ASCII, CJK punctuation, all 6,763 GB2312 hanzi (both levels) and every character the board's own
files, the hub's built-in names and the shipped configs use, so Chinese labels and unit names render on
machines without a CJK font and without internet.

    apt-get install fonts-droid-fallback && pip install fonttools brotli && python scripts/build_board_font.py
"""

from __future__ import annotations

from pathlib import Path

from fontTools import subset

ROOT = Path(__file__).resolve().parent.parent
SOURCE = Path("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf")


def characters() -> str:
    chars = {chr(c) for c in range(0x20, 0x7F)} | {chr(c) for c in range(0x3000, 0x3040)} | \
        {chr(c) for c in range(0xFF00, 0xFF66)} | set("—·×✓→…")
    for hi in range(0xB0, 0xF8):  # GB2312 levels 1 and 2: rows 16-87
        for lo in range(0xA1, 0xFF):
            try:
                chars.add(bytes([hi, lo]).decode("gb2312"))
            except UnicodeDecodeError:
                pass
    for f in [*(ROOT / "hub/board").glob("*.js"), *(ROOT / "hub/board").glob("*.html"), ROOT / "hub/policy/labels.py",
              *(ROOT / "configs").rglob("*.yaml")]:
        chars |= set(f.read_text(encoding="utf-8"))
    return "".join(sorted(c for c in chars if c.isprintable()))


def main() -> None:
    opts = subset.Options()
    opts.flavor = "woff2"
    opts.layout_features = ["*"]
    font = subset.load_font(str(SOURCE), opts)
    sub = subset.Subsetter(opts)
    sub.populate(text=characters())
    sub.subset(font)
    out = ROOT / "hub/board/cjk.woff2"
    subset.save_font(font, str(out), opts)
    print(f"{out}: {out.stat().st_size} bytes")


if __name__ == "__main__":
    main()
