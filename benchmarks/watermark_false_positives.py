"""How often does the watermark reader claim an unmarked image? (issue 25, item 4)

    python benchmarks/watermark_false_positives.py [--random 1000]

Unmarked images, each read as ``ganforge verify`` reads it (and with ``--thorough``'s nine resize factors):

- natural: every distinct colour photo that ships offline (scikit-image's colour photos of >= 256 px and
  scikit-learn's two sample images), whole: the largest set of independent natural photos on this machine;
- random: ``--random`` images of each of three kinds at 256 x 256: uniform noise, smooth noise (16 x 16 noise
  upsampled bicubically) and 1/f ("pink") noise, whose spectrum falls like natural images'.

Besides the count, the reader's bit errors (of 32; <= 4 reads as marked) are summarised: on an unmarked
image they should look like coin flips (mean 16), and the binomial chance of <= 4 errors,
sum_{k<=4} C(32, k) / 2^32 = 9.7e-6, is the false-positive rate a chance-like reader would have.
"""
from __future__ import annotations

import argparse
import math
import os

import numpy as np
from PIL import Image

from ganforge.runs import provenance as pv


def natural_photos() -> list[tuple[str, np.ndarray]]:
    import skimage
    from sklearn.datasets import load_sample_images

    out = []
    root = os.path.join(os.path.dirname(skimage.__file__), "data")
    for name in sorted(os.listdir(root)):
        try:
            with Image.open(os.path.join(root, name)) as im:
                if im.mode in ("RGB", "RGBA") and min(im.size) >= 256:
                    out.append((name, np.asarray(im.convert("RGB"))))
        except OSError:
            continue
    for i, img in enumerate(load_sample_images().images):
        out.append((f"sklearn sample {i}", np.ascontiguousarray(img)))
    return out


def random_images(kind: str, n: int, rng: np.random.Generator) -> list[np.ndarray]:
    out = []
    for _ in range(n):
        if kind == "uniform noise":
            a = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
        elif kind == "smooth noise":
            small = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
            a = np.asarray(Image.fromarray(small).resize((256, 256), Image.BICUBIC))
        else:  # 1/f noise per channel
            f = np.fft.fftfreq(256)
            radius = np.sqrt(f[:, None] ** 2 + f[None, :] ** 2)
            radius[0, 0] = 1.0
            chans = []
            for _ in range(3):
                spectrum = (rng.standard_normal((256, 256)) + 1j * rng.standard_normal((256, 256))) / radius
                x = np.real(np.fft.ifft2(spectrum))
                chans.append((x - x.min()) / (x.max() - x.min() + 1e-12) * 255)
            a = np.stack(chans, -1).astype(np.uint8)
        out.append(a)
    return out


def read(images: list[np.ndarray], thorough: bool) -> tuple[int, list[int]]:
    hits, errors = 0, []
    for a in images:
        e = pv.bit_errors(a)
        errors.append(e)
        marked = e is not None and e <= pv.MAX_BIT_ERRORS
        if thorough and not marked:
            marked = any(pv.has_watermark(b) for b in pv.undo_resizes(a))
        hits += bool(marked)
    return hits, errors


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--random", type=int, default=300)
    a = ap.parse_args()
    os.environ["GANFORGE_WATERMARK"] = "1"
    chance = sum(math.comb(32, k) for k in range(pv.MAX_BIT_ERRORS + 1)) / 2**32
    rng = np.random.default_rng(0)
    sets = {"natural photos (independent)": [img for _, img in natural_photos()]}
    for kind in ("uniform noise", "smooth noise", "1/f noise"):
        sets[kind] = random_images(kind, a.random, rng)
    print(f"chance of <= {pv.MAX_BIT_ERRORS} of 32 bits wrong for a coin-flip reader: {chance:.2e}")
    print("| unmarked images | N | claimed (plain) | claimed (--thorough) | 95 % upper bound on the rate | "
          "bit errors: mean, min |\n| --- | --- | --- | --- | --- | --- |")
    total = 0
    for name, imgs in sets.items():
        plain, errors = read(imgs, False)
        thorough, _ = read(imgs, True)
        total += len(imgs)
        bound = 3 / len(imgs) if plain == 0 else float("nan")  # rule of three
        print(f"| {name} | {len(imgs)} | {plain} | {thorough} | {bound:.2%} | {np.mean(errors):.1f}, {min(errors)} |")
    print(f"all: {total} images; zero claimed bounds the plain rate below {3 / total:.2%} (rule of three, 95 %)")


if __name__ == "__main__":
    main()
