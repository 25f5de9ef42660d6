"""Write `hub/board/alarm.wav`: the wall's alarm, two alternating tones (880/660 Hz, 0.9 s), 8 kHz 8-bit mono,
made here so the page needs no outside sound and no licence question arises.

    python scripts/make_alarm_sound.py
"""

from __future__ import annotations

import math
import wave
from pathlib import Path

RATE = 8000


def main() -> None:
    frames = bytearray()
    for i in range(int(RATE * 0.9)):
        t = i / RATE
        tone = 880.0 if int(t / 0.15) % 2 == 0 else 660.0
        fade = min(1.0, (0.9 - t) * 20, t * 40)
        frames.append(int(128 + 100 * fade * math.sin(2 * math.pi * tone * t)))
    out = Path(__file__).resolve().parent.parent / "hub/board/alarm.wav"
    with wave.open(str(out), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(1)
        w.setframerate(RATE)
        w.writeframes(bytes(frames))
    print(f"{out}: {out.stat().st_size} bytes")


if __name__ == "__main__":
    main()
