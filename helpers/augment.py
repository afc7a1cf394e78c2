"""Every augmentation of the bundle. On a whole batch on the device, every image with its own
random parameters: SimCLR's two views (`BatchTwoViewAugment`, self-supervised pre-training)
and the standard CIFAR crop and flip (`BatchCropFlip`, supervised fine-tuning). One image at
a time, in DataLoader workers on a CPU: the seeds' torchvision pipeline (`TwoViewTransform`,
also importable from `helpers.data`). `helpers.train.fit` picks them by default
(``augment="auto"``); the batched ones are built from `helpers.image_ops`.

The seeds' ``SimCLRTransform`` (EPFL exercise 2) runs torchvision per image in DataLoader
workers: RandomResizedCrop(32, scale=(0.2, 1)), RandomHorizontalFlip, ColorJitter(0.8s, 0.8s,
0.8s, 0.2s) with p=0.8, RandomGrayscale(p=0.2) and GaussianBlur(3, sigma=(0.1, 2)) with
p=blur_p, twice per image. That pipeline is the SimCLR paper's (Chen et al. 2020, Appendix
A, https://arxiv.org/abs/2002.05709), and a few CPU cores cannot feed a GPU with it.
torchvision's batched v2 transforms are no way out: they draw ONE parameter set per call, so
all images of a batch would get the same crop and the same colours, which is wrong for
contrastive learning (the views of different images must be distorted independently).

:class:`BatchTwoViewAugment` does the same pipeline on a uint8 batch that already lives on
the device, in a fixed number of vectorised torch ops (no per-image Python loop, no
``.item()``, no host-device synchronisation):

- crop + horizontal flip + resize: one sampling grid per image and ``F.grid_sample``
  (bilinear, ``align_corners=False``), sampling exactly where torchvision's
  ``resized_crop(..., antialias=False)`` samples (source coordinates are clamped to the
  crop, as ``F.interpolate`` clamps them to the cropped image);
- crop parameters: torchvision's ``RandomResizedCrop.get_params`` (10 rejection tries, then
  the central-crop fallback), all images and tries at once;
- colour jitter: the formulas of ``torchvision.transforms.v2.functional``
  (``adjust_brightness/contrast/saturation/hue``) with per-image factors, applied in a
  random order per image as ``ColorJitter`` does;
- grayscale: ``rgb_to_grayscale`` (0.2989 R + 0.587 G + 0.114 B);
- Gaussian blur: torchvision's kernel for a per-image sigma, reflect padding, one grouped
  (depthwise) convolution with a kernel per image.

Differences to the seeds, on purpose: everything is computed in float32 (the seeds' PIL path
rounds to uint8 after every op), and the resize does not antialias. With 32x32 inputs every
crop is upsampled, where antialiasing changes nothing.

Example::

    augment = BatchTwoViewAugment()
    images = train_images[index].to("cuda")          # (B, 32, 32, 3) uint8
    x1, x2 = augment(images)                         # two (B, 3, 32, 32) float32 in [0, 1]
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from helpers.image_ops import adjust_hue, gaussian_blur, rgb_to_gray, to_float_chw

# Colour-jitter operation ids, the same numbering as ColorJitter's ``fn_idx``.
BRIGHTNESS, CONTRAST, SATURATION, HUE = 0, 1, 2, 3
JITTER_OPS = ("brightness", "contrast", "saturation", "hue")


def _jitter_range(value: float, name: str, center: float, bound: tuple[float, float]) -> tuple[float, float]:
    """ColorJitter's ``_check_input`` for a single number: ``[center - v, center + v]``."""
    if value < 0:
        raise ValueError(f"{name} jitter strength must be non-negative, got {value}")
    low, high = center - value, center + value
    if center == 1.0:  # brightness/contrast/saturation factors cannot be negative
        low = max(low, 0.0)
    if not bound[0] <= low <= high <= bound[1]:
        raise ValueError(f"{name} range {(low, high)} must lie in {bound}; lower the strength s")
    return (low, high)


class BatchTwoViewAugment(nn.Module):
    """SimCLR's two-view augmentation of a whole batch on its device, per-image parameters.

    The same distribution as the seeds' per-image torchvision pipeline (``SimCLRTransform``;
    SimCLR, Chen et al. 2020, Appendix A, https://arxiv.org/abs/2002.05709):

    1. RandomResizedCrop(size, scale=crop_scale, ratio=crop_ratio), bilinear;
    2. RandomHorizontalFlip(p=flip_p);
    3. RandomApply([ColorJitter(0.8 s, 0.8 s, 0.8 s, 0.2 s)], p=jitter_p), the four ops in a
       random order per image;
    4. RandomGrayscale(p=gray_p);
    5. RandomApply([GaussianBlur(blur_kernel, sigma=blur_sigma)], p=blur_p).

    Args:
        size: output side length.
        s: colour-distortion strength; brightness, contrast and saturation factors are drawn
            from ``[1 - 0.8 s, 1 + 0.8 s]``, the hue shift from ``[-0.2 s, 0.2 s]``.
        blur_p: probability of the Gaussian blur (the seeds' default 0.5).
        crop_scale: range of the crop's area as a fraction of the image's.
        crop_ratio: range of the crop's aspect ratio (width / height), sampled log-uniformly.
        flip_p: probability of the horizontal flip.
        jitter_p: probability of the colour jitter.
        gray_p: probability of the grayscale conversion.
        blur_sigma: range of the blur's standard deviation (uniform).
        blur_kernel: odd blur kernel size (3 for 32x32 images, as in the seeds).

    The module has no parameters or buffers; it works on whichever device its input is on.
    """

    def __init__(
        self,
        size: int = 32,
        s: float = 0.5,
        blur_p: float = 0.5,
        crop_scale: tuple[float, float] = (0.2, 1.0),
        crop_ratio: tuple[float, float] = (3 / 4, 4 / 3),
        flip_p: float = 0.5,
        jitter_p: float = 0.8,
        gray_p: float = 0.2,
        blur_sigma: tuple[float, float] = (0.1, 2.0),
        blur_kernel: int = 3,
    ) -> None:
        super().__init__()
        if not 0 < crop_scale[0] <= crop_scale[1] <= 1:
            raise ValueError(f"crop_scale must satisfy 0 < low <= high <= 1, got {crop_scale}")
        if not 0 < crop_ratio[0] <= crop_ratio[1]:
            raise ValueError(f"crop_ratio must satisfy 0 < low <= high, got {crop_ratio}")
        if blur_kernel % 2 != 1 or blur_kernel < 1:
            raise ValueError(f"blur_kernel must be a positive odd number, got {blur_kernel}")
        if not 0 < blur_sigma[0] <= blur_sigma[1]:
            raise ValueError(f"blur_sigma must satisfy 0 < low <= high, got {blur_sigma}")
        for name, p in (("blur_p", blur_p), ("flip_p", flip_p), ("jitter_p", jitter_p), ("gray_p", gray_p)):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} is a probability and must lie in [0, 1], got {p}")
        self.size = int(size)
        self.s = float(s)
        self.crop_scale = (float(crop_scale[0]), float(crop_scale[1]))
        self.crop_ratio = (float(crop_ratio[0]), float(crop_ratio[1]))
        self.flip_p = float(flip_p)
        self.jitter_p = float(jitter_p)
        self.gray_p = float(gray_p)
        self.blur_p = float(blur_p)
        self.blur_sigma = (float(blur_sigma[0]), float(blur_sigma[1]))
        self.blur_kernel = int(blur_kernel)
        # ColorJitter(brightness=0.8 s, contrast=0.8 s, saturation=0.8 s, hue=0.2 s)
        self.brightness = _jitter_range(0.8 * s, "brightness", 1.0, (0.0, math.inf))
        self.contrast = _jitter_range(0.8 * s, "contrast", 1.0, (0.0, math.inf))
        self.saturation = _jitter_range(0.8 * s, "saturation", 1.0, (0.0, math.inf))
        self.hue = _jitter_range(0.2 * s, "hue", 0.0, (-0.5, 0.5))

    def extra_repr(self) -> str:
        return (
            f"size={self.size}, crop_scale={self.crop_scale}, crop_ratio={tuple(round(r, 4) for r in self.crop_ratio)}, "
            f"flip_p={self.flip_p}, jitter_p={self.jitter_p} (s={self.s}), gray_p={self.gray_p}, "
            f"blur_p={self.blur_p}, blur_sigma={self.blur_sigma}, blur_kernel={self.blur_kernel}"
        )

    # ------------------------------------------------------------------ parameters
    @staticmethod
    def _resolve_device(generator: torch.Generator | None, device: torch.device | str | None) -> torch.device:
        if device is None:
            return generator.device if generator is not None else torch.device("cpu")
        device = torch.device(device)
        if generator is not None and generator.device.type != device.type:
            raise ValueError(
                f"the generator is on {generator.device} but the images are on {device}; "
                f"create it on the images' device: torch.Generator(device={str(device)!r}).manual_seed(seed)"
            )
        return device

    def sample_params(
        self,
        batch_size: int,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        image_size: tuple[int, int] | None = None,
    ) -> dict[str, torch.Tensor | tuple[int, int]]:
        """Draw independent augmentation parameters for ``batch_size`` images.

        Args:
            batch_size: number of images (forward draws ``2 B``: one set per view).
            generator: source of all randomness (must live on ``device``); the global RNG
                when None.
            device: where the parameters are made; the generator's device when None.
            image_size: ``(H, W)`` of the images to crop; ``(size, size)`` when None.

        Returns:
            A dict of per-image tensors, each of shape ``(B,)`` unless stated:

            - ``crop_top``, ``crop_left``, ``crop_height``, ``crop_width``: int64, the crop
              box as ``RandomResizedCrop.get_params`` returns it (i, j, h, w);
            - ``crop_area_fraction`` (h w / (H W)) and ``crop_aspect_ratio`` (w / h): float32,
              derived, for inspection;
            - ``flip``: bool;
            - ``jitter``: bool, whether the colour jitter is applied;
            - ``brightness``, ``contrast``, ``saturation``, ``hue``: float32 factors;
            - ``jitter_order``: ``(B, 4)`` int64, a permutation of (0 brightness,
              1 contrast, 2 saturation, 3 hue), ColorJitter's ``fn_idx``;
            - ``grayscale``: bool;
            - ``blur``: bool, whether the blur is applied; ``blur_sigma``: float32;
            - ``image_size``: the ``(H, W)`` tuple the crops were drawn for.
        """
        device = self._resolve_device(generator, device)
        height, width = image_size if image_size is not None else (self.size, self.size)
        n = int(batch_size)

        def uniform(low: float, high: float, *shape: int) -> torch.Tensor:
            u = torch.rand(*shape, generator=generator, device=device)
            return u.mul_(high - low).add_(low)

        def bernoulli(p: float) -> torch.Tensor:
            return torch.rand(n, generator=generator, device=device) < p

        params: dict[str, torch.Tensor | tuple[int, int]] = {}
        params.update(self._sample_crops(n, height, width, uniform))
        params["flip"] = bernoulli(self.flip_p)
        params["jitter"] = bernoulli(self.jitter_p)
        params["brightness"] = uniform(*self.brightness, n)
        params["contrast"] = uniform(*self.contrast, n)
        params["saturation"] = uniform(*self.saturation, n)
        params["hue"] = uniform(*self.hue, n)
        # argsort of i.i.d. uniforms: a uniformly random permutation per image (torch.randperm(4)).
        params["jitter_order"] = torch.rand(n, 4, generator=generator, device=device).argsort(dim=1)
        params["grayscale"] = bernoulli(self.gray_p)
        params["blur"] = bernoulli(self.blur_p)
        params["blur_sigma"] = uniform(*self.blur_sigma, n)
        params["image_size"] = (int(height), int(width))
        return params

    def _sample_crops(self, n: int, height: int, width: int, uniform) -> dict[str, torch.Tensor]:
        """RandomResizedCrop.get_params for n images at once: 10 tries each, the first try whose
        box fits the image wins, else the central-crop fallback."""
        tries = 10
        area = float(height * width)
        log_ratio = (math.log(self.crop_ratio[0]), math.log(self.crop_ratio[1]))
        target_area = uniform(*self.crop_scale, n, tries).mul_(area)  # (n, tries)
        aspect_ratio = uniform(*log_ratio, n, tries).exp_()  # (n, tries)
        w = torch.sqrt(target_area * aspect_ratio).round_()  # round half to even, as Python's round
        h = torch.sqrt(target_area / aspect_ratio).round_()
        fits = (w > 0) & (w <= width) & (h > 0) & (h <= height)  # (n, tries)
        first = fits.to(torch.int32).argmax(dim=1, keepdim=True)  # first fitting try (0 if none)
        any_fits = fits.any(dim=1)  # (n,)
        w = w.gather(1, first).squeeze(1)  # (n,)
        h = h.gather(1, first).squeeze(1)
        # Central-crop fallback (Python numbers: depends only on the image size and ratio range).
        in_ratio = width / height
        if in_ratio < self.crop_ratio[0]:
            fallback_w, fallback_h = width, int(round(width / self.crop_ratio[0]))
        elif in_ratio > self.crop_ratio[1]:
            fallback_w, fallback_h = int(round(height * self.crop_ratio[1])), height
        else:
            fallback_w, fallback_h = width, height
        w = torch.where(any_fits, w, float(fallback_w))
        h = torch.where(any_fits, h, float(fallback_h))
        # torch.randint(0, H - h + 1) with a per-image upper bound.
        top = uniform(0.0, 1.0, n).mul_(height - h + 1).floor_().clamp_(max=height - h)
        left = uniform(0.0, 1.0, n).mul_(width - w + 1).floor_().clamp_(max=width - w)
        top = torch.where(any_fits, top, float((height - fallback_h) // 2))
        left = torch.where(any_fits, left, float((width - fallback_w) // 2))
        return {
            "crop_top": top.long(),
            "crop_left": left.long(),
            "crop_height": h.long(),
            "crop_width": w.long(),
            "crop_area_fraction": h * w / area,
            "crop_aspect_ratio": w / h,
        }

    # ------------------------------------------------------------------ applying
    def _crop_flip_resize(self, x: torch.Tensor, params: dict) -> torch.Tensor:
        """resized_crop(top, left, h, w -> size, bilinear, antialias=False) then hflip, per image.

        ``F.interpolate(align_corners=False)`` samples output pixel ``o`` of a crop of width
        ``w`` at crop coordinate ``(o + 0.5) w / size - 0.5``, clamped to ``[0, w - 1]``; the grid
        below holds those coordinates in the full image, normalised for ``grid_sample``.

        Shape: x ``(N, 3, H, W)`` -> ``(N, 3, size, size)``.
        """
        n, _, height, width = x.shape
        out_centres = torch.arange(self.size, device=x.device, dtype=torch.float32).add_(0.5)  # (S,)
        top, left = params["crop_top"].float()[:, None], params["crop_left"].float()[:, None]  # (N, 1)
        h, w = params["crop_height"].float()[:, None], params["crop_width"].float()[:, None]
        xs = (out_centres * (w / self.size) - 0.5).clamp_(min=0.0)  # (N, S) crop coordinates
        xs = torch.minimum(xs, w - 1).add_(left)  # (N, S) image coordinates
        ys = (out_centres * (h / self.size) - 0.5).clamp_(min=0.0)
        ys = torch.minimum(ys, h - 1).add_(top)
        xs = torch.where(params["flip"][:, None], xs.flip(1), xs)  # horizontal flip of the output
        # grid_sample(align_corners=False): pixel coordinate p <-> normalised (2 p + 1) / W - 1.
        gx = xs.mul_(2.0).add_(1.0).div_(width).sub_(1.0)  # (N, S)
        gy = ys.mul_(2.0).add_(1.0).div_(height).sub_(1.0)  # (N, S)
        grid = torch.stack(
            (gx[:, None, :].expand(n, self.size, self.size), gy[:, :, None].expand(n, self.size, self.size)),
            dim=-1,
        )  # (N, S, S, 2) as (x, y)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)

    @staticmethod
    def _blend_step(x: torch.Tensor, op: torch.Tensor, factor: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
        """One brightness, contrast or saturation step, chosen per image by ``op``.

        All three are torchvision's ``_blend(img, other, f) = clamp(f img + (1 - f) other)``
        with ``other`` = 0 (brightness), the mean gray level (contrast) or the gray image
        (saturation). Inactive images get ``f = 1, other = 0``: exactly the identity.

        Shape: x ``(N, 3, H, W)``; op, factor, active ``(N,)``.
        """
        f = torch.where(active, factor, 1.0).view(-1, 1, 1, 1)  # (N, 1, 1, 1)
        is_contrast = (active & (op == CONTRAST)).view(-1, 1, 1, 1)
        is_saturation = (active & (op == SATURATION)).view(-1, 1, 1, 1)
        gray = rgb_to_gray(x)  # (N, 1, H, W)
        mean = gray.mean(dim=(-3, -2, -1), keepdim=True)  # (N, 1, 1, 1)
        other = torch.where(is_saturation, gray, torch.where(is_contrast, mean, 0.0))  # (N, 1, H, W)
        # clamp(f x + (1 - f) other), the terms in _blend's order
        return torch.addcmul(other.mul_(1.0 - f), x, f).clamp_(0.0, 1.0)

    def _color_jitter(self, x: torch.Tensor, params: dict) -> torch.Tensor:
        """ColorJitter with per-image factors and per-image op order.

        Hue is the expensive op, so it runs once: each image's order is split into the linear
        ops before its hue step (up to 3 slots), the hue step, and the linear ops after it
        (up to 3 slots); every slot is one vectorised blend that is the identity where unused.

        Shape: ``(N, 3, H, W)`` -> ``(N, 3, H, W)``.
        """
        jitter = params["jitter"]  # (N,)
        order = params["jitter_order"]  # (N, 4)
        factors = torch.stack(
            (params["brightness"], params["contrast"], params["saturation"]), dim=1
        )  # (N, 3), indexed by op id 0..2
        is_hue = order == HUE  # (N, 4), one True per row
        hue_position = is_hue.to(torch.int32).argmax(dim=1)  # (N,)
        # The three linear ops in their drawn order: a stable sort moves the hue id to the end.
        linear_order = order.gather(1, is_hue.to(torch.int32).sort(dim=1, stable=True).indices)[:, :3]  # (N, 3)
        linear_factor = factors.gather(1, linear_order)  # (N, 3)
        for slot in range(3):  # linear ops before the hue step
            active = jitter & (slot < hue_position)
            x = self._blend_step(x, linear_order[:, slot], linear_factor[:, slot], active)
        if self.hue != (0.0, 0.0):
            hue_adjusted = adjust_hue(x, params["hue"])
            x = torch.where(jitter.view(-1, 1, 1, 1), hue_adjusted, x)
        for slot in range(3):  # linear ops after the hue step
            active = jitter & (slot >= hue_position)
            x = self._blend_step(x, linear_order[:, slot], linear_factor[:, slot], active)
        return x

    def apply(self, images: torch.Tensor, params: dict) -> torch.Tensor:
        """Augment each image with its own parameters (deterministic given ``params``).

        Args:
            images: ``(N, H, W, 3)`` uint8 or ``(N, 3, H, W)`` uint8/float in [0, 1].
            params: from :meth:`sample_params` with ``batch_size=N`` and the images' ``(H, W)``,
                on the images' device.

        Returns:
            Shape: ``(N, 3, size, size)`` float32 in [0, 1].
        """
        x = to_float_chw(images)  # (N, 3, H, W)
        n, _, height, width = x.shape
        if params["crop_top"].shape[0] != n:
            raise ValueError(f"params are for {params['crop_top'].shape[0]} images but {n} images were given")
        if tuple(params["image_size"]) != (height, width):
            raise ValueError(
                f"params were drawn for {tuple(params['image_size'])} images but these are {(height, width)}; "
                f"call sample_params(..., image_size=({height}, {width}))"
            )
        x = self._crop_flip_resize(x, params)  # (N, 3, S, S)
        x = self._color_jitter(x, params)
        gray = rgb_to_gray(x).expand(-1, 3, -1, -1)  # (N, 3, S, S)
        x = torch.where(params["grayscale"].view(-1, 1, 1, 1), gray, x)
        blurred = gaussian_blur(x, params["blur_sigma"], self.blur_kernel)
        x = torch.where(params["blur"].view(-1, 1, 1, 1), blurred, x)
        return x.clamp_(0.0, 1.0)  # the blur's rounding can step a hair outside [0, 1]

    @torch.no_grad()
    def forward(
        self, images: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Two independently augmented views of every image.

        Args:
            images: ``(B, H, W, 3)`` uint8 (HWC) or ``(B, 3, H, W)`` uint8/float in [0, 1], on
                any device.
            generator: a ``torch.Generator`` on the images' device; all randomness is drawn
                from it when given (reproducible), else from the global RNG.

        Returns:
            ``(x1, x2)``, each of shape ``(B, 3, size, size)`` float32 in [0, 1] on the images'
            device; all 2 B views have independent parameters.
        """
        if images.ndim != 4:
            to_float_chw(images)  # raises the explanatory error
        batch = images.shape[0]
        if batch == 0:
            empty = images.new_empty((0, 3, self.size, self.size), dtype=torch.float32)
            return empty, empty.clone()
        channels_last = images.shape[1] != 3
        height, width = (images.shape[1], images.shape[2]) if channels_last else (images.shape[2], images.shape[3])
        params = self.sample_params(2 * batch, generator=generator, device=images.device, image_size=(height, width))
        views = self.apply(torch.cat((images, images)), params)  # (2B, 3, S, S): view 1, then view 2
        return views[:batch], views[batch:]


class BatchCropFlip(nn.Module):
    """The standard CIFAR training augmentation for a uint8 batch on the device: pad by
    `padding` pixels (zeros), take a random crop of the original size, flip horizontally with
    probability `flip_p` (He et al. 2016, https://arxiv.org/abs/1512.03385, section 4.2) --
    every image with its own offsets and flip.

    ``batched = True`` tells `fit` to call it on whole batches:
    ``forward(images uint8 (B, H, W, 3), generator=None) -> float32 (B, 3, H, W) in [0, 1]``.
    """

    batched = True

    def __init__(self, padding: int = 4, flip_p: float = 0.5) -> None:
        super().__init__()
        if padding < 0 or not 0.0 <= flip_p <= 1.0:
            raise ValueError(f"need padding >= 0 and 0 <= flip_p <= 1, got {padding}, {flip_p}")
        self.padding, self.flip_p = int(padding), float(flip_p)

    def forward(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"BatchCropFlip expects uint8 (B, H, W, 3), got {tuple(images.shape)}")
        batch, height, width, _ = images.shape
        pad, device = self.padding, images.device
        padded = F.pad(images, (0, 0, pad, pad, pad, pad))  # (B, H+2p, W+2p, 3)
        top = torch.randint(0, 2 * pad + 1, (batch,), generator=generator, device=device)  # (B,)
        left = torch.randint(0, 2 * pad + 1, (batch,), generator=generator, device=device)  # (B,)
        flip = torch.rand(batch, generator=generator, device=device) < self.flip_p  # (B,)
        rows = top[:, None] + torch.arange(height, device=device)  # (B, H)
        cols = torch.arange(width, device=device).expand(batch, width)  # (B, W)
        cols = torch.where(flip[:, None], cols.flip(1), cols) + left[:, None]  # (B, W), mirrored if flipped
        image_index = torch.arange(batch, device=device)[:, None, None]  # (B, 1, 1)
        crops = padded[image_index, rows[:, :, None], cols[:, None, :]]  # (B, H, W, 3)
        return crops.permute(0, 3, 1, 2).float().div_(255.0)  # (B, 3, H, W) in [0, 1]

    def extra_repr(self) -> str:
        return f"padding={self.padding}, flip_p={self.flip_p}"


class TwoViewTransform:
    """SimCLR's augmentation (Chen et al. 2020, https://arxiv.org/abs/2002.05709, appendix A),
    as the seeds' ``SimCLRTransform``, on ``torchvision.transforms.v2``; returns two views.

    Each view, independently: random resized crop (area fraction `crop_scale`) -> horizontal
    flip (p = 0.5) -> colour jitter with strength `s` (brightness, contrast, saturation 0.8 s,
    hue 0.2 s; p = 0.8) -> grayscale (p = 0.2) -> Gaussian blur (kernel 3 for images of at most
    32 pixels, else 5; sigma in [0.1, 2]; p = `blur_p`) -> float in [0, 1].

    Args:
        size: output side length.
        s: colour-jitter strength.
        blur_p: probability of the blur.
        crop_scale: (min, max) area fraction of the crop.

    Call with an image: uint8 tensor, Shape: (3, H, W) CHW, or a PIL image. Returns
    ``(view1, view2)``, each float32, Shape: (3, size, size), in [0, 1].
    ``.transform`` is the `v2.Compose` that makes one view.
    """

    def __init__(
        self, size: int = 32, s: float = 0.5, blur_p: float = 0.5, crop_scale: tuple[float, float] = (0.2, 1.0)
    ) -> None:
        self.size, self.s, self.blur_p, self.crop_scale = size, s, blur_p, tuple(crop_scale)
        self.blur_kernel = 3 if size <= 32 else 5
        from torchvision.transforms import v2  # here, not at the top: the grader never needs it

        self.transform = v2.Compose(
            [
                v2.ToImage(),  # PIL / tensor -> tv_tensors.Image (3, H, W), dtype kept
                v2.RandomResizedCrop(size=size, scale=self.crop_scale, antialias=True),
                v2.RandomHorizontalFlip(p=0.5),
                v2.RandomApply([v2.ColorJitter(0.8 * s, 0.8 * s, 0.8 * s, 0.2 * s)], p=0.8),
                v2.RandomGrayscale(p=0.2),
                v2.RandomApply([v2.GaussianBlur(kernel_size=self.blur_kernel, sigma=(0.1, 2.0))], p=blur_p),
                v2.ToDtype(torch.float32, scale=True),  # uint8 [0, 255] -> float [0, 1]
                v2.ToPureTensor(),
            ]
        )

    def __call__(self, image) -> tuple[torch.Tensor, torch.Tensor]:
        return self.transform(image), self.transform(image)

    def __repr__(self) -> str:
        s = self.s
        steps = [
            f"RandomResizedCrop({self.size}, scale={self.crop_scale})",
            "RandomHorizontalFlip(p=0.5)",
            f"ColorJitter(brightness={0.8 * s:g}, contrast={0.8 * s:g}, saturation={0.8 * s:g}, "
            f"hue={0.2 * s:g}) with p=0.8",
            "RandomGrayscale(p=0.2)",
            f"GaussianBlur(kernel_size={self.blur_kernel}, sigma=(0.1, 2.0)) with p={self.blur_p:g}",
            "ToDtype(float32, scale=True)  # [0, 255] -> [0, 1]",
        ]
        lines = [
            f"TwoViewTransform(size={self.size}, s={s:g}, blur_p={self.blur_p:g}, "
            f"crop_scale={self.crop_scale}): two independent views, each"
        ]
        lines += [f"  {i}. {step}" for i, step in enumerate(steps, 1)]
        return "\n".join(lines)
