"""The image operations the batched augmentations are made of (`helpers.augment`), on float
batches with one parameter per image: torchvision's formulas (``rgb_to_grayscale``,
``adjust_hue``, ``gaussian_blur``), vectorised over the batch, and the conversion of uint8
batches to float CHW.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# Luma weights of torchvision's rgb_to_grayscale (ITU-R 601-2, as PIL's "L" mode).
GRAY_WEIGHTS = (0.2989, 0.587, 0.114)


def to_float_chw(images: torch.Tensor) -> torch.Tensor:
    """Bring a batch of images to float32 CHW in [0, 1].

    Args:
        images: ``(B, H, W, 3)`` uint8 (HWC, the layout of ``helpers.data.load_cifar10``),
            ``(B, 3, H, W)`` uint8, or ``(B, 3, H, W)`` floating point in [0, 1].

    Returns:
        Shape: ``(B, 3, H, W)`` float32 in [0, 1], on the images' device.
    """
    if images.ndim != 4:
        raise ValueError(
            f"expected a batch of images with 4 dimensions, (B, H, W, 3) uint8 or (B, 3, H, W), "
            f"got shape {tuple(images.shape)}; add a batch dimension with images[None]"
        )
    if images.shape[1] == 3:  # (B, 3, H, W)
        chw = images
    elif images.shape[-1] == 3 and images.dtype == torch.uint8:  # (B, H, W, 3)
        chw = images.permute(0, 3, 1, 2)
    else:
        raise ValueError(
            f"cannot tell the channel dimension of images with shape {tuple(images.shape)} and "
            f"dtype {images.dtype}: pass uint8 (B, H, W, 3) or uint8/float (B, 3, H, W) RGB images"
        )
    if chw.dtype == torch.uint8:
        return chw.to(torch.float32).div_(255.0)
    if not chw.is_floating_point():
        raise TypeError(f"images must be uint8 or floating point in [0, 1], got {chw.dtype}")
    return chw.to(torch.float32)


def rgb_to_gray(x: torch.Tensor) -> torch.Tensor:
    """torchvision's ``rgb_to_grayscale`` on float images (same weights, same op order).

    Shape: ``(N, 3, H, W)`` -> ``(N, 1, H, W)``.
    """
    r, g, b = x.unbind(dim=-3)
    return r.mul(GRAY_WEIGHTS[0]).add_(g, alpha=GRAY_WEIGHTS[1]).add_(b, alpha=GRAY_WEIGHTS[2]).unsqueeze(-3)


def _rgb_to_hsv(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """torchvision.transforms.v2.functional._color._rgb_to_hsv, returning the planes unstacked.

    Shape: ``(N, 3, H, W)`` -> three ``(N, H, W)`` planes (hue in [0, 1), saturation, value).
    """
    r, g, b = image.unbind(dim=-3)
    # torch.aminmax(image, dim=-3) as torchvision, as elementwise ops on the planes (same values, faster)
    minc = torch.minimum(torch.minimum(r, g), b)  # (N, H, W)
    maxc = torch.maximum(torch.maximum(r, g), b)
    eqc = maxc == minc  # gray pixels: hue and saturation are 0, avoid dividing by 0
    channels_range = maxc - minc
    ones = torch.ones_like(maxc)
    s = channels_range / torch.where(eqc, ones, maxc)
    channels_range_divisor = torch.where(eqc, ones, channels_range).unsqueeze_(dim=-3)
    rc, gc, bc = ((maxc.unsqueeze(dim=-3) - image) / channels_range_divisor).unbind(dim=-3)
    mask_maxc_neq_r = maxc != r
    mask_maxc_eq_g = maxc == g
    hg = rc.add(2.0).sub_(bc).mul_(mask_maxc_eq_g & mask_maxc_neq_r)
    hr = bc.sub_(gc).mul_(~mask_maxc_neq_r)
    hb = gc.add_(4.0).sub_(rc).mul_(mask_maxc_neq_r.logical_and_(mask_maxc_eq_g.logical_not_()))
    h = hr.add_(hg).add_(hb)
    h = h.mul_(1.0 / 6.0).add_(1.0).fmod_(1.0)
    return h, s, maxc


def _hsv_to_rgb(h: torch.Tensor, s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """torchvision.transforms.v2.functional._color._hsv_to_rgb from unstacked planes.

    torchvision picks each channel from (v, p, q, t) by the hue sector i with a lookup table
    and ``gather``; the ``torch.where`` chains below pick the same values (bit for bit) at a
    fraction of the memory traffic.

    Shape: three ``(N, H, W)`` planes -> ``(N, 3, H, W)``.
    """
    h6 = h.mul(6)
    i = torch.floor(h6)
    f = h6.sub_(i)
    # hue sector i in 0..5; torchvision takes i mod 6 in int32, here i = 6 (h6 rounded up to 6.0)
    # joins sector 0 in the masks below: the same selection without the slow integer remainder
    sxf = s * f
    one_minus_s = 1.0 - s
    q = (1.0 - sxf).mul_(v).clamp_(0.0, 1.0)
    t = sxf.add_(one_minus_s).mul_(v).clamp_(0.0, 1.0)
    p = one_minus_s.mul_(v).clamp_(0.0, 1.0)
    # sector:  0  1  2  3  4  5
    # red:     v  q  p  p  t  v
    # green:   t  v  v  q  p  p
    # blue:    p  p  t  v  v  q
    s0, s1, s2, s3, s4, s5 = (i == sector for sector in range(6))  # (N, H, W) bool each
    s0 = s0 | (i == 6)
    red = torch.where(s0 | s5, v, torch.where(s1, q, torch.where(s4, t, p)))
    green = torch.where(s1 | s2, v, torch.where(s0, t, torch.where(s3, q, p)))
    blue = torch.where(s3 | s4, v, torch.where(s2, t, torch.where(s5, q, p)))
    return torch.stack((red, green, blue), dim=-3)


def adjust_hue(x: torch.Tensor, hue_factor: torch.Tensor) -> torch.Tensor:
    """v2.functional.adjust_hue with one factor per image.

    Args:
        x: Shape ``(N, 3, H, W)`` float in [0, 1].
        hue_factor: Shape ``(N,)``, each in [-0.5, 0.5].

    Returns:
        Shape ``(N, 3, H, W)``.
    """
    h, s, v = _rgb_to_hsv(x)  # (N, H, W) each
    h = h.add_(hue_factor.view(-1, 1, 1)).remainder_(1.0)
    return _hsv_to_rgb(h, s, v)


def gaussian_kernels(sigma: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """torchvision's 2-D Gaussian blur kernel for each sigma.

    ``_get_gaussian_kernel1d``: softmax of ``-(x / sigma)^2`` over ``kernel_size`` points in
    ``[-lim, lim]``, ``lim = (kernel_size - 1) / (2 sqrt 2)`` (i.e. ``exp(-d^2 / (2 sigma^2))`` at
    integer offsets ``d``, normalised); the 2-D kernel is the outer product.

    Shape: sigma ``(N,)`` -> ``(N, kernel_size, kernel_size)``.
    """
    lim = (kernel_size - 1) / (2.0 * math.sqrt(2.0))
    positions = torch.linspace(-lim, lim, steps=kernel_size, dtype=sigma.dtype, device=sigma.device)
    kernel1d = torch.softmax((positions / sigma[:, None]).pow(2).neg(), dim=1)  # (N, k)
    return kernel1d[:, :, None] * kernel1d[:, None, :]  # (N, k, k): y (rows) x x (columns)


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """v2.functional.gaussian_blur with one sigma per image: reflect padding, then one depthwise
    convolution whose groups are the N * 3 (image, channel) pairs.

    Shape: x ``(N, C, H, W)`` float, sigma ``(N,)`` -> ``(N, C, H, W)``.
    """
    n, c, height, width = x.shape
    pad = kernel_size // 2
    kernels = gaussian_kernels(sigma.to(x.dtype), kernel_size)  # (N, k, k)
    weight = kernels[:, None].expand(n, c, kernel_size, kernel_size).reshape(n * c, 1, kernel_size, kernel_size)
    padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")  # (N, C, H + 2 pad, W + 2 pad)
    padded = padded.reshape(1, n * c, height + 2 * pad, width + 2 * pad)  # images as channels
    return F.conv2d(padded, weight, groups=n * c).reshape(n, c, height, width)
