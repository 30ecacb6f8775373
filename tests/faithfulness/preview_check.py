#!/usr/bin/env python3
"""Render previews the way the reference DEP does (astropy + matplotlib, and
scikit-image for histogram equalisation) and compare JPEGs.

Used by the conformance suite (tests/conformance/previews.rs); needs numpy,
astropy, matplotlib, scikit-image and Pillow (`.ci/run` installs them).

  preview_check.py render  --fits F --mode asinh|histeq|scales --out REF.jpg
  preview_check.py compare A.jpg B.jpg            -> JSON on stdout
  preview_check.py from-jpeg --jpeg J --header-from F --out RAW.fits

`render` follows the reference's base `create_jpg_from_fits` (zscale limits,
asinh stretch, one output pixel per data pixel, origin lower, grey map,
quality 92) and KCWI's (skimage `equalize_hist`, then matplotlib's linear
normalisation), and SCALES's own renderer (`scales`: a cube's last read
minus its first — in floating point, the fix of defect S4 —, zscale limits,
square-root stretch to 0..255, row 0 at the top, Pillow's thumbnail to fit
1024 × 1024, quality 85). `from-jpeg` turns a JPEG back into a frame whose pixel rows
are what matplotlib would draw at those places (row 0 = the JPEG's bottom row).
"""

import argparse
import json
import sys

import numpy as np


def render_scales(fits_path, out):
    from astropy.io import fits
    from astropy.visualization import ZScaleInterval
    from PIL import Image

    with fits.open(fits_path, ignore_missing_end=True) as hdul:
        data = hdul[0].data
        if data.ndim == 3:
            image = data[-1].astype(np.float64) - data[0].astype(np.float64)
        elif data.ndim == 2:
            image = data.astype(np.float64)
        else:
            raise SystemExit(f"cannot render {data.ndim}-D data")
    image = np.nan_to_num(image, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)
    vmin, vmax = ZScaleInterval().get_limits(image)
    if not (np.isfinite(vmin) and np.isfinite(vmax)) or vmax <= vmin:
        vmin, vmax = float(image.min()), float(image.max())
    if vmax > vmin:
        y = np.sqrt(np.clip((image - vmin) / (vmax - vmin), 0.0, 1.0))
        grey = (255.0 * y).astype(np.uint8)
    else:
        grey = np.zeros(image.shape, dtype=np.uint8)
    im = Image.fromarray(grey, mode="L")
    im.thumbnail((1024, 1024))
    im.save(out, quality=85)


def render(fits_path, mode, out):
    if mode == "scales":
        return render_scales(fits_path, out)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from astropy.io import fits
    from astropy.visualization import AsinhStretch, ImageNormalize, ZScaleInterval

    with fits.open(fits_path, ignore_missing_end=True) as hdul:
        data = hdul[0].data
        hdr = hdul[0].header
        dpi = 100
        fig = plt.figure(figsize=(hdr["NAXIS1"] / dpi, hdr["NAXIS2"] / dpi), frameon=False, dpi=dpi)
        fig.add_axes([0, 0, 1, 1])
        plt.axis("off")
        if mode == "asinh":
            vmin, vmax = ZScaleInterval().get_limits(data)
            norm = ImageNormalize(vmin=vmin, vmax=vmax, stretch=AsinhStretch())
            plt.imshow(data, cmap="gray", origin="lower", norm=norm)
        elif mode == "histeq":
            from skimage import exposure

            plt.imshow(exposure.equalize_hist(data), cmap="gray", origin="lower")
        else:
            raise SystemExit(f"unknown mode {mode}")
        plt.savefig(out, pil_kwargs={"quality": 92})
        plt.close()


def grey(path):
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("L"), dtype=np.float64), im.size, im.mode


def compare(a, b):
    ga, size_a, mode_a = grey(a)
    gb, size_b, mode_b = grey(b)
    out = {"a": {"width": size_a[0], "height": size_a[1], "mode": mode_a},
           "b": {"width": size_b[0], "height": size_b[1], "mode": mode_b}}
    if ga.shape == gb.shape:
        out["pearson"] = float(np.corrcoef(ga.ravel(), gb.ravel())[0, 1])
        out["mad"] = float(np.mean(np.abs(ga - gb)))
        # the same comparison with one image turned upside down
        out["pearson_flipped"] = float(np.corrcoef(ga[::-1].ravel(), gb.ravel())[0, 1])
    json.dump(out, sys.stdout)
    print()


def from_jpeg(jpeg, header_from, out):
    from astropy.io import fits

    g, _, _ = grey(jpeg)
    with fits.open(header_from, ignore_missing_end=True) as hdul:
        hdr = hdul[0].header.copy()
    # origin='lower': the JPEG's bottom row shows data row 0
    data = np.ascontiguousarray(g[::-1]).astype(np.float32)
    fits.PrimaryHDU(data=data, header=hdr).writeto(out, overwrite=True, output_verify="silentfix")


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("render")
    r.add_argument("--fits", required=True)
    r.add_argument("--mode", required=True, choices=["asinh", "histeq", "scales"])
    r.add_argument("--out", required=True)
    c = sub.add_parser("compare")
    c.add_argument("a")
    c.add_argument("b")
    f = sub.add_parser("from-jpeg")
    f.add_argument("--jpeg", required=True)
    f.add_argument("--header-from", required=True)
    f.add_argument("--out", required=True)
    a = p.parse_args()
    if a.cmd == "render":
        render(a.fits, a.mode, a.out)
    elif a.cmd == "compare":
        compare(a.a, a.b)
    else:
        from_jpeg(a.jpeg, a.header_from, a.out)


if __name__ == "__main__":
    main()
