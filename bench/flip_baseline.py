"""The Python baseline for bench/flip.sh: the tutorial's image_flipper on a
multiprocessing.Pool, with Pillow.

    python3 bench/flip_baseline.py FORMAT OUT_DIR PROCESSES IMAGE...

Prints the seconds spent in pool.map (the pool already started) on stdout.
"""

import os
import sys
import time
from multiprocessing import Pool

from PIL import Image

FORMAT, OUT_DIR = sys.argv[1], sys.argv[2]


def image_flipper(file_name):
    """Rotate one image by 180 degrees and save it as OUT_DIR/<stem>_flipped.<FORMAT>."""
    im = Image.open(file_name)
    im_flipped = im.rotate(angle=180)
    stem = os.path.splitext(os.path.basename(file_name))[0]
    im_flipped.save(os.path.join(OUT_DIR, f"{stem}_flipped.{FORMAT}"))


if __name__ == "__main__":
    processes, files = int(sys.argv[3]), sys.argv[4:]
    with Pool(processes) as pool:
        start = time.perf_counter()
        pool.map(image_flipper, files)
        print(f"{time.perf_counter() - start:.6f}")
