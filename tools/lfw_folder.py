#!/usr/bin/env python3
"""Write scikit-image's LFW subset as an image folder: DIR/{train,test}/{face,non-face}/*.png.

The subset (`skimage.data.lfw_subset`) is 200 real photographs at 25x25 gray: 100 faces
cropped from Labeled Faces in the Wild and 100 patches of the same photos' backgrounds. It
ships inside the scikit-image package, so no download is needed beyond `pip install
scikit-image`. Every fifth image of each class goes to test/ (20 + 20), the rest to train/
(80 + 80), so the README's fine-tune evaluates on photos it never trained on.
"""

import argparse
import os
import sys


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", help="folder to create (must not exist)")
    args = ap.parse_args()
    try:
        import numpy as np
        from PIL import Image
        from skimage.data import lfw_subset
    except ImportError as e:
        print(f"needs scikit-image (pip install scikit-image): {e}", file=sys.stderr)
        return 1
    if os.path.exists(args.out):
        print(f"{args.out} exists: give a new folder", file=sys.stderr)
        return 1
    images = lfw_subset()
    if images.shape != (200, 25, 25):
        print(f"unexpected LFW subset shape {images.shape}", file=sys.stderr)
        return 1
    # The array is float in [0, 1] in current scikit-image (uint8 in older ones).
    if images.dtype != np.uint8:
        images = np.clip(np.rint(images * 255.0), 0, 255).astype(np.uint8)
    for i, img in enumerate(images):
        cls = "face" if i < 100 else "non-face"
        split = "test" if i % 5 == 4 else "train"
        d = os.path.join(args.out, split, cls)
        os.makedirs(d, exist_ok=True)
        Image.fromarray(img, mode="L").save(os.path.join(d, f"{i:03d}.png"))
    print(f"wrote 160 training and 40 test photos under {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
