#!/usr/bin/env python3
"""The reference DEP's heavy level-0 path for one frame, re-created for the
`versus` benchmark (runtime/benches/versus.rs) from the behavioural spec:

  1. astropy load of every HDU (the data units are read, as the reference's
     DQA steps read them);
  2. `set_image_stats`: population std, mean and median of the primary data,
     rounded to 2 decimals, written into the header (IMAGEMN/IMAGESD/IMAGEMD);
  3. the lev-0 write (`writeto` of every HDU with the modified header);
  4. `create_jpg_from_fits`: a matplotlib figure one output pixel per data
     pixel, grey map, origin lower, quality 92 — zscale + asinh (base), scikit-
     image histogram equalisation (KCWI), or the DEIMOS 2x4 CCD mosaic (per-
     row overscan bias, per-CCD zscale of the 10 % inset box, global limits
     with vmin >= 0, flips, rows stacked and turned 90 degrees clockwise,
     drawn at half size);
  5. the md5 table: `<md5>  <path>` of the lev-0 file (and the JPEG).

  versus_reference.py --mode asinh|histeq|mosaic --fits IN --out DIR

Not the reference's code: what its code does, written again so both paths
can be timed on the same frames. Needs numpy, astropy, matplotlib and
scikit-image (`.ci/run` installs them).
"""

import argparse
import hashlib
import os
import re

import numpy as np


def image_stats(hdr, data):
    if data is None:
        return
    d = np.asarray(data, dtype=np.float64)
    hdr["IMAGEMN"] = (round(float(np.mean(d)), 2), "KOA: Image data mean")
    hdr["IMAGESD"] = (round(float(np.std(d)), 2), "KOA: Image data standard deviation")
    hdr["IMAGEMD"] = (round(float(np.median(d)), 2), "KOA: Image data median")


def figure(plt, cols, rows, scale=1.0):
    dpi = 100
    fig = plt.figure(figsize=(cols * scale / dpi, rows * scale / dpi), frameon=False, dpi=dpi)
    fig.add_axes([0, 0, 1, 1])
    plt.axis("off")
    return fig


def mosaic(hdul):
    """The DEIMOS level-1 RTI mosaic (instruments.md, DEIMOS JPEG)."""
    from astropy.visualization import ZScaleInterval

    prim = hdul[0].header
    bx, by = (int(v) for v in str(prim.get("BINNING", "1,1")).split(","))
    precol, postpix = int(prim.get("PRECOL", 0)) // bx, int(prim.get("POSTPIX", 0)) // bx
    preline, postline = int(prim.get("PRELINE", 0)) // by, int(prim.get("POSTLINE", 0)) // by
    ccds = []
    for ext in range(1, len(hdul)):
        det = hdul[ext].header.get("DETSEC")
        if det is None or hdul[ext].data is None:
            continue
        m = re.search(r"(-?\d+):(-?\d+),(-?\d+):(-?\d+)", det)
        x1, x2, y1, y2 = (int(g) for g in m.groups())
        row = 1 if (y1 > 4096 or y2 > 4096) else 0
        ccds.append((row, x1, x2, y1, y2, ext))
    ccds.sort()
    vmins, vmaxs, rows = [], [], {0: [], 1: []}
    for row, x1, x2, y1, y2, ext in ccds:
        data = hdul[ext].data.astype(np.float64)
        nrows, ncols = data.shape
        bias = np.median(data[:, ncols - postpix + 1:ncols - 1], axis=1).astype(int)
        data = data - bias[:, None]
        box = data[int(preline + 0.1 * nrows):int(nrows - postline - 0.1 * nrows),
                   int(precol + 0.1 * ncols):int(ncols - postpix - 0.1 * ncols)]
        lo, hi = ZScaleInterval().get_limits(box)
        vmins.append(lo)
        vmaxs.append(hi)
        data = data[:, precol:ncols - postpix]
        if x1 > x2:
            data = np.fliplr(data)
        if y1 > y2:
            data = np.flipud(data)
        rows[row].append(data)
    parts = [np.hstack(rows[r]) for r in (0, 1) if rows[r]]
    img = np.rot90(np.vstack(parts), -1) if len(parts) == 2 else parts[0]
    return img, max(0.0, min(vmins)), max(vmaxs)


def render(hdul, mode, out):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from astropy.visualization import AsinhStretch, ImageNormalize, ZScaleInterval

    if mode == "mosaic":
        img, vmin, vmax = mosaic(hdul)
        figure(plt, img.shape[1], img.shape[0], 0.5)
        norm = ImageNormalize(vmin=vmin, vmax=vmax, stretch=AsinhStretch())
        plt.imshow(img, cmap="gray", origin="lower", norm=norm)
    else:
        data = hdul[0].data
        figure(plt, data.shape[1], data.shape[0])
        if mode == "asinh":
            vmin, vmax = ZScaleInterval().get_limits(data)
            norm = ImageNormalize(vmin=vmin, vmax=vmax, stretch=AsinhStretch())
            plt.imshow(data, cmap="gray", origin="lower", norm=norm)
        else:
            from skimage import exposure

            plt.imshow(exposure.equalize_hist(data), cmap="gray", origin="lower")
    plt.savefig(out, pil_kwargs={"quality": 92})
    plt.close()


def md5(path):
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--mode", required=True, choices=["asinh", "histeq", "mosaic"])
    p.add_argument("--fits", required=True)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    from astropy.io import fits

    os.makedirs(a.out, exist_ok=True)
    base = os.path.splitext(os.path.basename(a.fits))[0]
    lev0 = os.path.join(a.out, base + ".fits")
    jpg = os.path.join(a.out, base + ".jpg")
    with fits.open(a.fits, ignore_missing_end=True) as hdul:
        for hdu in hdul:
            _ = hdu.data  # the reference's DQA reads every data unit
        image_stats(hdul[0].header, hdul[0].data)
        hdul.writeto(lev0, overwrite=True, output_verify="silentfix")
        render(hdul, a.mode, jpg)
    with open(os.path.join(a.out, base + ".md5sum.table"), "w") as f:
        for path in (lev0, jpg):
            f.write(f"{md5(path)}  {path}\n")


if __name__ == "__main__":
    main()
