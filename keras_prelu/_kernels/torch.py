"""PyTorch PReLU kernels: torch's PReLU forward (the public `torch.prelu` when
traced), a backward for our convention (CPU: vectorised kernels over batch
slices; CUDA: torch's, x == 0 patched; else the `where` form). Why:
docs/kernels.md; figures: benchmarks/README.md."""

import numpy as np
import torch

from keras_prelu._kernels._reduce import accumulation_dtype
from keras_prelu._kernels._reduce import broadcast_reduction_axes

_ATEN = torch.ops.aten
_HAS_FUSED_FORWARD = hasattr(_ATEN, "_prelu_kernel")
_HAS_FUSED_BACKWARD = hasattr(_ATEN, "_prelu_kernel_backward")
_HAS_VECTOR_KERNELS = hasattr(_ATEN, "threshold_backward") and hasattr(torch, "lerp")
# Elements per slice of the CPU backward: 1 MiB of float32, which stays in cache.
_CPU_SLICE_ELEMENTS = 1 << 18
_is_compiling = getattr(getattr(torch, "compiler", None), "is_compiling", lambda: False)
# Private (Function.apply checks it): is a torch.func transform active? Else assume so.
_transforms_active = getattr(torch._C, "_are_functorch_transforms_active", lambda: True)


def _slopes(alpha, dtype):
    return alpha if alpha.dtype == dtype else alpha.to(dtype)


# On CPU tensors only (no device sync); NumPy has less per-call overhead than
# torch's dispatch, which matters for small activations. bfloat16 goes to torch.
def _any_nan(values):
    try:
        return bool(np.isnan(values.detach().numpy()).any())
    except TypeError:
        return bool(torch.isnan(values).any())


def _sum_to_alpha(per_element, alpha):
    axes = broadcast_reduction_axes(per_element.ndim, alpha.shape)
    dtype = getattr(torch, accumulation_dtype(per_element.dtype, alpha.dtype))
    # `torch.sum(dim=())` would reduce every axis, not none.
    if axes:
        per_element = torch.sum(per_element, dim=axes, keepdim=True, dtype=dtype)
    return per_element.reshape(alpha.shape).to(alpha.dtype)


def _forward_where(x, alpha):
    return torch.where(x >= 0, x, x * _slopes(alpha, x.dtype))


def _slope_block(x_ndim, alpha_shape):
    """The first and last axes of x the slope varies along; `()` for one
    slope, None if they are not contiguous."""
    offset = x_ndim - len(alpha_shape)
    varying = [offset + i for i, dim in enumerate(alpha_shape) if dim != 1]
    if not varying:
        return ()
    if varying[-1] - varying[0] + 1 != len(varying):
        return None
    return varying[0], varying[-1]


def _forward(x, alpha):
    slopes = _slopes(alpha, x.dtype)
    # Eagerly, the private kernel: no view out, so in-place ops may follow it.
    if _HAS_FUSED_FORWARD and not torch.jit.is_tracing():
        return _ATEN._prelu_kernel(x, slopes)
    return _forward_public(x, slopes)


def _forward_public(x, slopes):
    block = _slope_block(x.ndim, slopes.shape) if x.ndim else None
    if block is None:
        return _forward_where(x, slopes)
    if not block:
        return torch.prelu(x, slopes.reshape(1))
    first, last = block
    if first == last and first > 0:
        # Views, no copy; OpenVINO cancels these transposes against a conv's.
        return torch.prelu(x.movedim(first, 1), slopes.reshape(-1)).movedim(1, first)
    # `flatten`, not a reshape to sizes read here: traced shapes stay dynamic.
    flat = x.unsqueeze(0) if first == 0 else x.flatten(0, first - 1)
    first, last = 1, last - first + 1
    if last > first:
        flat = flat.flatten(first, last)
    return torch.prelu(flat, slopes.reshape(-1)).reshape_as(x)


def _backward_fused(upstream, x, alpha, need_alpha=True):
    grad_x, per_element = _ATEN._prelu_kernel_backward(upstream, x, _slopes(alpha, x.dtype))
    # In place (a fresh full-size buffer costs page faults), unless grad_x may
    # be differentiated again.
    zero = x == 0
    if torch.is_grad_enabled():
        grad_x = torch.where(zero, upstream, grad_x)
    else:
        grad_x = torch.where(zero, upstream, grad_x, out=grad_x)
    if not need_alpha:
        return grad_x, None
    # Its term at x == 0 is 0 * upstream, NaN for an infinite upstream.
    per_element = torch.where(zero, torch.zeros_like(per_element), per_element)
    return grad_x, _sum_to_alpha(per_element, alpha)


def _backward_where(upstream, x, alpha, need_alpha=True):
    nonnegative = x >= 0
    grad_x = torch.where(nonnegative, upstream, upstream * _slopes(alpha, x.dtype))
    if not need_alpha:
        return grad_x, None
    per_element = torch.where(nonnegative, torch.zeros_like(upstream), upstream * x)
    return grad_x, _sum_to_alpha(per_element, alpha)


def _batch_slices(x, upstream, grad_x, alpha):
    """`(x, upstream, grad_x)` views of batch slices of about
    `_CPU_SLICE_ELEMENTS`; one slice if there is no batch or the slope spans it."""
    if x.ndim == 0 or x.shape[0] == 0 or (alpha.ndim == x.ndim and alpha.shape[0] != 1):
        return [(x, upstream, grad_x)]
    rows = max(1, _CPU_SLICE_ELEMENTS // max(1, x[0].numel()))
    return [
        (x[i : i + rows], upstream[i : i + rows], grad_x[i : i + rows])
        for i in range(0, x.shape[0], rows)
    ]


def _backward_sliced(upstream, x, alpha, need_alpha=True):
    """The CPU backward: vectorised kernels over cache-sized batch slices.

    With s the smallest subnormal, p = `threshold_backward(1, x, -s)` is 0
    for x < 0 and 1 for x >= 0 or NaN; grad_x = upstream * lerp(alpha, 1, p),
    exact for a finite slope, and d alpha = sum(min(x, 0) * upstream). A NaN
    x (negative branch) or a 0 * inf term makes the sum NaN, which sends the
    whole backward to `_backward_where`.
    """
    if torch.is_grad_enabled():  # differentiated again: out= kernels record no graph
        return _backward_where(upstream, x, alpha, need_alpha)
    grad_x = torch.empty_like(x)
    slices = _batch_slices(x, upstream, grad_x, alpha)
    # Two reused scratch slices; no kernel writes over its own input (slower in torch).
    scratch = (torch.empty_like(slices[0][0]), torch.empty_like(slices[0][0]))
    one = torch.ones((), dtype=x.dtype, device=x.device)
    if not need_alpha:
        _sliced_input_gradient(slices, scratch, _slopes(alpha, x.dtype), one)
        return grad_x, None
    axes = broadcast_reduction_axes(x.ndim, alpha.shape)
    summed_in = getattr(torch, accumulation_dtype(x.dtype, alpha.dtype))
    info = torch.finfo(x.dtype)
    below_zero = -(info.smallest_normal * info.eps)  # the smallest subnormal
    slopes, total = _slopes(alpha, x.dtype), None
    for x_part, upstream_part, grad_part in slices:
        clamped, terms = (_fit(buffer, x_part) for buffer in scratch)
        torch.clamp_max(x_part, 0, out=clamped)
        torch.mul(clamped, upstream_part, out=terms)
        if axes:
            partial = torch.sum(terms, dim=axes, keepdim=True, dtype=summed_in)
            total = partial if total is None else total.add_(partial)
        else:  # a slope per element (one slice): the terms are its gradient
            total, terms = terms.clone(), clamped
        ones = one.expand_as(x_part)
        _ATEN.threshold_backward.grad_input(ones, x_part, below_zero, grad_input=clamped)
        factor = torch.lerp(slopes, ones, clamped, out=terms)  # clamped: now the indicator
        torch.mul(upstream_part, factor, out=grad_part)
    if _any_nan(total):
        return _backward_where(upstream, x, alpha, need_alpha)
    return grad_x, total.reshape(alpha.shape).to(alpha.dtype)


def _sliced_input_gradient(slices, scratch, slopes, one) -> None:
    """`_backward_sliced` for a frozen slope: with no sum to catch NaN, the
    indicator n = `threshold_backward(1, -x, 0)` puts NaN on the negative
    side, and grad_x = upstream * lerp(1, alpha, n)."""
    for x_part, upstream_part, grad_part in slices:
        negated, negative = (_fit(buffer, x_part) for buffer in scratch)
        ones = one.expand_as(x_part)
        torch.neg(x_part, out=negated)
        _ATEN.threshold_backward.grad_input(ones, negated, 0, grad_input=negative)
        factor = torch.lerp(ones, slopes, negative, out=negated)
        torch.mul(upstream_part, factor, out=grad_part)


def _fit(buffer, part):
    """`buffer` cut to `part`'s rows (the last slice may be shorter)."""
    return buffer if buffer.shape == part.shape else buffer[: part.shape[0]]


def _backward(upstream, x, alpha, need_alpha=True):
    if torch.is_grad_enabled() or _is_compiling():
        # Differentiated again, or traced by compiled autograd (which can
        # trace the backward of an eager forward).
        return _backward_where(upstream, x, alpha, need_alpha)
    if x.device.type == "cpu" and _HAS_VECTOR_KERNELS:
        return _backward_sliced(upstream, x, alpha, need_alpha)
    if _HAS_FUSED_BACKWARD:
        return _backward_fused(upstream, x, alpha, need_alpha)
    return _backward_where(upstream, x, alpha, need_alpha)


def _tangent(x, alpha, x_tangent, alpha_tangent):
    """`t_x * (1 or alpha) + (0 or t_alpha) * (0 or x)`, the first of each
    pair where x >= 0; masks before products, so no `inf * 0` there."""
    nonnegative = x >= 0
    tangent = None
    if x_tangent is not None:
        tangent = x_tangent * torch.where(nonnegative, 1, _slopes(alpha, x.dtype))
    if alpha_tangent is not None:
        masked = torch.where(nonnegative, 0, _slopes(alpha_tangent, x.dtype))
        from_alpha = masked * torch.where(nonnegative, 0, x)
        tangent = from_alpha if tangent is None else tangent + from_alpha
    return torch.zeros_like(x) if tangent is None else tangent


class _CompilablePReLU(torch.autograd.Function):
    """The `torch.where` kernel for torch.compile (Dynamo cannot trace a `jvp`)."""

    @staticmethod
    def forward(x, alpha):
        return _forward_where(x, alpha)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(*inputs)

    @staticmethod
    def backward(ctx, upstream):
        x, alpha = ctx.saved_tensors
        return _backward_where(upstream, x, alpha, ctx.needs_input_grad[1])


class _TransformablePReLU(_CompilablePReLU):
    """The `torch.where` kernel in the form torch.func transforms."""

    generate_vmap_rule = True

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(*inputs)
        ctx.save_for_forward(*inputs)

    @staticmethod
    def jvp(ctx, x_tangent, alpha_tangent):
        x, alpha = ctx.saved_tensors
        return _tangent(x, alpha, x_tangent, alpha_tangent)


def _make_function(forward_kernel, backward_kernel):
    """A PReLU function saving only x and alpha; `backward_kernel(upstream,
    x, alpha, need_alpha)` gives alpha's gradient None for a frozen slope."""

    # `forward` takes `ctx`: `apply` is several times faster than with a
    # `setup_context` (which torch.func requires), which small tensors feel.
    class PReLUFunction(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, alpha):
            ctx.save_for_backward(x, alpha)
            ctx.save_for_forward(x, alpha)
            return forward_kernel(x, alpha)

        @staticmethod
        def symbolic(g, x, alpha):
            # TorchScript ONNX export: one PRelu, without torch.prelu's reshapes.
            return g.op("PRelu", x, alpha)

        @staticmethod
        def backward(ctx, upstream):
            x, alpha = ctx.saved_tensors
            return backward_kernel(upstream, x, alpha, ctx.needs_input_grad[1])

        @staticmethod
        def jvp(ctx, x_tangent, alpha_tangent):
            x, alpha = ctx.saved_tensors
            return _tangent(x, alpha, x_tangent, alpha_tangent)

    def apply(x, alpha):
        if _is_compiling():
            return _CompilablePReLU.apply(x, alpha)
        if _transforms_active():
            return _TransformablePReLU.apply(x, alpha)
        return PReLUFunction.apply(x, alpha)

    return apply


prelu = _make_function(_forward, _backward)
# Fixed kernel pairs, for tests and benchmarks.
prelu_fused = _make_function(_forward, _backward_fused) if _HAS_FUSED_BACKWARD else None
prelu_sliced = _make_function(_forward, _backward_sliced) if _HAS_VECTOR_KERNELS else None
prelu_where = _make_function(_forward_where, _backward_where)
prelu_training = prelu
