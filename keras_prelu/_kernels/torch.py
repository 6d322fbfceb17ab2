"""PyTorch PReLU kernel: torch's fused forward, a backward for our convention.

`torch.nn.functional.prelu` only takes a slope per channel at dim 1, so the
forward calls the broadcasting kernel behind it, `aten._prelu_kernel`.

Its backward, `aten._prelu_kernel_backward`, puts x == 0 on the negative
branch (d/dx = alpha) where our convention has the identity branch, and on
CPU it is slow: measured on 8M float32 elements in cache, 28 ms against 2 ms
for ReLU's backward, as is `torch.where` (18 ms); both are scalar loops in
this build, and every fresh full-size buffer costs about 11 ms of page faults
on top. So on CPU the backward is computed in slices of the batch, about
1 MiB each, with vectorised arithmetic kernels only (clamp, multiply, sum,
`threshold_backward`) whose temporaries stay in cache; the only full-size
buffer is the input gradient itself, as for ReLU.

Elsewhere (CUDA, `torch.compile`, or a backward that is itself
differentiated) the fused kernels are used with the x == 0 entries patched,
and where a torch build lacks them a plain `torch.where` formulation with the
same results.
"""

import torch

from keras_prelu._kernels._reduce import broadcast_reduction_axes

_ATEN = torch.ops.aten
HAS_FUSED_KERNELS = hasattr(_ATEN, "_prelu_kernel") and hasattr(_ATEN, "_prelu_kernel_backward")
HAS_THRESHOLD_BACKWARD = hasattr(_ATEN, "threshold_backward")
# Elements of x per slice in the CPU backward: 1 MiB of float32, so that the
# slice's temporaries stay in cache.
CPU_SLICE_ELEMENTS = 1 << 18


def _is_compiling():
    is_compiling = getattr(getattr(torch, "compiler", None), "is_compiling", None)
    return bool(is_compiling and is_compiling())


def _accumulation_dtype(dtype):
    return torch.promote_types(dtype, torch.float32)


def _sum_to_alpha(per_element, alpha):
    axes = broadcast_reduction_axes(per_element.ndim, alpha.shape)
    # `torch.sum(dim=())` would reduce every axis, not none.
    if axes:
        per_element = torch.sum(
            per_element, dim=axes, keepdim=True, dtype=_accumulation_dtype(per_element.dtype)
        )
    return per_element.reshape(alpha.shape).to(alpha.dtype)


def _forward_fused(x, alpha):
    return _ATEN._prelu_kernel(x, alpha)


def _forward_where(x, alpha):
    return torch.where(x >= 0, x, x * alpha)


def _backward_fused(upstream, x, alpha, need_alpha=True):
    grad_x, per_element = _ATEN._prelu_kernel_backward(upstream, x, alpha)
    # In place: a fresh 4-byte-per-element buffer costs page faults on CPU.
    # Not under autograd-of-autograd, where grad_x may be needed as is.
    if torch.is_grad_enabled():
        grad_x = torch.where(x == 0, upstream, grad_x)
    else:
        grad_x = torch.where(x == 0, upstream, grad_x, out=grad_x)
    return grad_x, _sum_to_alpha(per_element, alpha) if need_alpha else None


def _backward_where(upstream, x, alpha, need_alpha=True):
    nonnegative = x >= 0
    grad_x = torch.where(nonnegative, upstream, upstream * alpha)
    if not need_alpha:
        return grad_x, None
    per_element = torch.where(nonnegative, torch.zeros_like(upstream), upstream * x)
    return grad_x, _sum_to_alpha(per_element, alpha)


def _slice_rows(x, alpha):
    """Rows of x's first axis per slice; 0 means one slice (no slicing)."""
    if x.ndim == 0 or x.shape[0] == 0:
        return 0
    if alpha.ndim == x.ndim and alpha.shape[0] != 1:  # the slope spans the batch
        return 0
    return max(1, CPU_SLICE_ELEMENTS // max(1, x[0].numel()))


def _backward_sliced(upstream, x, alpha, need_alpha=True):
    """The CPU backward: vectorised kernels over cache-sized batch slices.

    Per slice, with n = 1 on the negative branch (x < 0 or NaN), else 0:
        grad_x  = upstream * ((1 - n) + n * alpha)   exactly upstream or upstream * alpha
        d alpha += sum(upstream * min(x, 0))          NaN for NaN x, 0 for +inf
    n comes from `threshold_backward(1, -x, 0)`, which is 0 where -x <= 0,
    and 1 elsewhere, NaN included, with no boolean tensor.
    """
    grad_x = torch.empty_like(x)
    axes = broadcast_reduction_axes(x.ndim, alpha.shape)
    rows = _slice_rows(x, alpha)
    if rows:
        starts = range(0, x.shape[0], rows)
        slices = [(x[i : i + rows], upstream[i : i + rows], grad_x[i : i + rows]) for i in starts]
    else:
        slices = [(x, upstream, grad_x)]
    total = None
    one = torch.ones((), dtype=x.dtype)
    for x_part, upstream_part, grad_part in slices:
        if not need_alpha:
            negative = torch.neg(x_part)
        elif axes:
            scratch = torch.clamp_max(x_part, 0).mul_(upstream_part)
            partial = torch.sum(scratch, dim=axes, keepdim=True, dtype=_accumulation_dtype(x.dtype))
            total = partial if total is None else total.add_(partial)
            negative = torch.neg(x_part, out=scratch)
        else:  # a slope per element (one slice): the products are its gradient
            total = torch.clamp_max(x_part, 0).mul_(upstream_part)
            negative = torch.neg(x_part)
        _ATEN.threshold_backward.grad_input(
            one.expand_as(negative), negative, 0, grad_input=negative
        )
        factor = torch.rsub(negative, 1)
        factor.addcmul_(negative, alpha)
        torch.mul(upstream_part, factor, out=grad_part)
    if not need_alpha:
        return grad_x, None
    return grad_x, total.reshape(alpha.shape).to(alpha.dtype)


def _backward(upstream, x, alpha, need_alpha=True):
    if (
        x.device.type == "cpu"
        and HAS_THRESHOLD_BACKWARD
        and not torch.is_grad_enabled()
        and not _is_compiling()
    ):
        return _backward_sliced(upstream, x, alpha, need_alpha)
    if HAS_FUSED_KERNELS:
        return _backward_fused(upstream, x, alpha, need_alpha)
    return _backward_where(upstream, x, alpha, need_alpha)


def make_function(forward_kernel, backward_kernel):
    """An autograd.Function saving only x and alpha, from a kernel pair.

    `backward_kernel(upstream, x, alpha, need_alpha)` returns the gradients
    of x and of alpha, the latter summed to alpha's shape, or None when
    `need_alpha` is false (a frozen slope).
    """

    class PReLUFunction(torch.autograd.Function):
        @staticmethod
        def forward(x, alpha):
            return forward_kernel(x, alpha)

        @staticmethod
        def symbolic(g, x, alpha):
            # torch.onnx's TorchScript exporter (Keras's choice for dynamic
            # shapes) cannot export aten::_prelu_kernel. ONNX's PRelu computes
            # the same values, with alpha broadcast to x, as one fused node.
            return g.op("PRelu", x, alpha)

        @staticmethod
        def setup_context(ctx, inputs, output):
            ctx.save_for_backward(*inputs)

        @staticmethod
        def backward(ctx, upstream):
            x, alpha = ctx.saved_tensors
            return backward_kernel(upstream, x, alpha, ctx.needs_input_grad[1])

    return PReLUFunction


_forward = _forward_fused if HAS_FUSED_KERNELS else _forward_where
PReLUFunction = make_function(_forward, _backward)
# Fixed kernel pairs, for tests and for comparing them.
FusedPReLU = make_function(_forward_fused, _backward_fused) if HAS_FUSED_KERNELS else None
SlicedPReLU = make_function(_forward, _backward_sliced) if HAS_THRESHOLD_BACKWARD else None
WherePReLU = make_function(_forward_where, _backward_where)


def prelu(x, alpha):
    return PReLUFunction.apply(x, alpha)
