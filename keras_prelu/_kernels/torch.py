"""PyTorch PReLU kernel: torch's own PReLU forward, a backward for our convention.

The forward is `torch.prelu`, the public op behind `torch.nn.PReLU`, which
takes one slope per entry of dim 1: the slope's axes are first flattened
onto dim 1 (views, no copies), so a channel-wise slope in channels_last,
a full slope or a scalar all run torch's vectorised kernel. Tracers
record that public op: `torch.jit.trace` (Keras's OpenVINO route, whose
converter maps it to one native `PRelu`) and the TorchScript ONNX exporter
(which takes the Function's `symbolic`, one ONNX `PRelu`). A slope whose
axes are not contiguous (sharing only a middle axis) takes
`torch.where(x >= 0, x, alpha * x)`. `torch.prelu` computes `alpha * x` at
x == 0, so with a negative slope a zero output has the other sign (equal
values); with a NaN or infinite slope, `inf * 0` makes it NaN: such slopes
mean training diverged, and their outputs are unspecified.

Its backward, `aten._prelu_kernel_backward`, puts x == 0 on the negative
branch (d/dx = alpha) where our convention has the identity branch, and on
CPU it is a scalar loop, as is `torch.where`, each several times slower
than a vectorised elementwise kernel; every fresh full-size buffer also
costs page faults. So on CPU the backward is computed in slices of the
batch, about 1 MiB each, with vectorised kernels only (`clamp_max`,
multiply, sum, `threshold_backward` as a select, `lerp`) whose temporaries
stay in cache; the only full-size buffer is the input gradient itself, as
for ReLU. The measurements are in benchmarks/README.md.

Elsewhere (CUDA, or a backward that is itself differentiated) the fused
backward is used with the x == 0 entries patched, and under `torch.compile`
and `torch.export` (whose compilers fuse it) and where a torch build lacks
those kernels, a plain `torch.where` formulation with the same results
(under torch.compile, in a Function without `jvp`, which Dynamo cannot
trace).

Function transforms: every kernel has a `jvp` (forward mode, through
`torch.autograd.forward_ad`), and its backward is differentiable again when
autograd records it. While a `torch.func` transform is active (`grad`,
`vmap`, `jvp`, `jacrev`, `jacfwd`, `hessian`, `functional_call` under them),
the fast kernels' data-dependent checks cannot run on its wrapped tensors, so
every kernel hands over to one `torch.where` function that torch.func can
transform: `setup_context`, the same `jvp`, and a generated vmap rule. Torch
tells whether a transform is active only through a private function; where a
build lacks it, that function always runs.
"""

import numpy as np
import torch

from keras_prelu._kernels._reduce import accumulation_dtype
from keras_prelu._kernels._reduce import broadcast_reduction_axes

_ATEN = torch.ops.aten
_HAS_FUSED_BACKWARD = hasattr(_ATEN, "_prelu_kernel_backward")
_HAS_VECTOR_KERNELS = hasattr(_ATEN, "threshold_backward") and hasattr(torch, "lerp")
# Elements of x per slice in the CPU backward: 1 MiB of float32, so that the
# slice's temporaries stay in cache.
_CPU_SLICE_ELEMENTS = 1 << 18
_is_compiling = getattr(getattr(torch, "compiler", None), "is_compiling", lambda: False)
# Private: whether a torch.func transform is active (what autograd.Function.apply
# itself checks). Without it, assume one is.
_transforms_active = getattr(torch._C, "_are_functorch_transforms_active", lambda: True)


def _slopes(alpha, dtype):
    return alpha if alpha.dtype == dtype else alpha.to(dtype)


# The check below looks at the summed slope gradient of CPU tensors only, so
# it costs no device synchronisation; NumPy answers it with less per-call
# overhead than torch's operator dispatch, which matters for small
# activations. Dtypes NumPy lacks (bfloat16) go through torch.
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
    """The first and last axes of x along which the slope varies, as a
    contiguous block; `()` for a single slope, None if not contiguous."""
    offset = x_ndim - len(alpha_shape)
    varying = [offset + i for i, dim in enumerate(alpha_shape) if dim != 1]
    if not varying:
        return ()
    if varying[-1] - varying[0] + 1 != len(varying):
        return None
    return varying[0], varying[-1]


def _forward(x, alpha):
    slopes = _slopes(alpha, x.dtype)
    block = _slope_block(x.ndim, slopes.shape) if x.ndim else None
    if block is None:
        return _forward_where(x, slopes)
    if not block:
        return torch.prelu(x, slopes.reshape(1))
    # Bring the slope's axes onto dim 1, as one axis: `flatten`, not a
    # reshape to sizes read here, so traced graphs keep dynamic shapes.
    first, last = block
    flat = x.unsqueeze(0) if first == 0 else x.flatten(0, first - 1)
    first, last = 1, last - first + 1
    if last > first:
        flat = flat.flatten(first, last)
    return torch.prelu(flat, slopes.reshape(-1)).reshape_as(x)


def _backward_fused(upstream, x, alpha, need_alpha=True):
    grad_x, per_element = _ATEN._prelu_kernel_backward(upstream, x, _slopes(alpha, x.dtype))
    # In place: a fresh full-size buffer costs page faults on CPU. Not under
    # autograd-of-autograd, where grad_x may be needed as is.
    zero = x == 0
    if torch.is_grad_enabled():
        grad_x = torch.where(zero, upstream, grad_x)
    else:
        grad_x = torch.where(zero, upstream, grad_x, out=grad_x)
    if not need_alpha:
        return grad_x, None
    # Its slope-gradient term at x == 0 is 0 * upstream, NaN for an infinite
    # upstream gradient, where the convention has 0.
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
    """`(x, upstream, grad_x)` views over slices of the batch of about
    `_CPU_SLICE_ELEMENTS` each; one slice when x has no batch to cut or the
    slope spans the batch."""
    if x.ndim == 0 or x.shape[0] == 0 or (alpha.ndim == x.ndim and alpha.shape[0] != 1):
        return [(x, upstream, grad_x)]
    rows = max(1, _CPU_SLICE_ELEMENTS // max(1, x[0].numel()))
    return [
        (x[i : i + rows], upstream[i : i + rows], grad_x[i : i + rows])
        for i in range(0, x.shape[0], rows)
    ]


def _backward_sliced(upstream, x, alpha, need_alpha=True):
    """The CPU backward: vectorised kernels over cache-sized batch slices.

    Per slice, with s the smallest subnormal of x's dtype and
    p = `threshold_backward(1, x, -s)` (0 where x <= -s, that is x < 0;
    1 where x >= 0, and where x is NaN):
        grad_x   = upstream * lerp(alpha, 1, p)   exactly upstream * alpha or upstream
        d alpha += sum(min(x, 0) * upstream)
    `lerp(alpha, 1, 0)` is alpha + 0 * (1 - alpha) and `lerp(alpha, 1, 1)`
    is 1 - (1 - alpha) * 0, exact for a finite slope. A NaN x, which belongs
    to the negative branch, gets upstream here, but its slope-gradient term
    is NaN, as is that of a non-finite upstream gradient next to x >= 0
    (0 * inf, where the reference has 0): so a NaN in the summed slope
    gradient sends the whole backward to `_backward_where` instead.
    """
    if torch.is_grad_enabled():  # differentiated again: out= kernels record no graph
        return _backward_where(upstream, x, alpha, need_alpha)
    grad_x = torch.empty_like(x)
    slices = _batch_slices(x, upstream, grad_x, alpha)
    # Two scratch buffers of one slice, reused; no kernel writes over one of
    # its own inputs (torch takes a slower path when an output aliases one).
    scratch = (torch.empty_like(slices[0][0]), torch.empty_like(slices[0][0]))
    if not need_alpha:
        _sliced_input_gradient(slices, scratch, _slopes(alpha, x.dtype))
        return grad_x, None
    axes = broadcast_reduction_axes(x.ndim, alpha.shape)
    summed_in = getattr(torch, accumulation_dtype(x.dtype, alpha.dtype))
    below_zero = -_smallest_subnormal(x.dtype)
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
        one = torch.ones((), dtype=x.dtype, device=x.device).expand_as(x_part)
        nonnegative = _ATEN.threshold_backward.grad_input(
            one, x_part, below_zero, grad_input=clamped
        )
        factor = torch.lerp(slopes, one, nonnegative, out=terms)
        torch.mul(upstream_part, factor, out=grad_part)
    if _any_nan(total):
        return _backward_where(upstream, x, alpha, need_alpha)
    return grad_x, total.reshape(alpha.shape).to(alpha.dtype)


def _sliced_input_gradient(slices, scratch, slopes) -> None:
    """`_backward_sliced`'s input gradient for a frozen slope, into each
    slice's `grad_x`. No sum, so the branch indicator comes from -x, with NaN
    on the negative side: n = `threshold_backward(1, -x, 0)` and
    grad_x = upstream * lerp(1, alpha, n)."""
    for x_part, upstream_part, grad_part in slices:
        negated, negative = (_fit(buffer, x_part) for buffer in scratch)
        one = torch.ones((), dtype=x_part.dtype, device=x_part.device).expand_as(x_part)
        torch.neg(x_part, out=negated)
        _ATEN.threshold_backward.grad_input(one, negated, 0, grad_input=negative)
        factor = torch.lerp(one, slopes, negative, out=negated)
        torch.mul(upstream_part, factor, out=grad_part)


def _fit(buffer, part):
    """`buffer`, cut to the rows of `part` (the last slice may be shorter)."""
    return buffer if buffer.shape == part.shape else buffer[: part.shape[0]]


def _smallest_subnormal(dtype):
    info = torch.finfo(dtype)
    return info.smallest_normal * info.eps


def _backward(upstream, x, alpha, need_alpha=True):
    if torch.is_grad_enabled() or _is_compiling():
        # Differentiated again, or traced by torch.compile (its compiled
        # autograd can trace the backward of a forward that ran eagerly).
        return _backward_where(upstream, x, alpha, need_alpha)
    if x.device.type == "cpu" and _HAS_VECTOR_KERNELS:
        return _backward_sliced(upstream, x, alpha, need_alpha)
    if _HAS_FUSED_BACKWARD:
        return _backward_fused(upstream, x, alpha, need_alpha)
    return _backward_where(upstream, x, alpha, need_alpha)


def _tangent(x, alpha, x_tangent, alpha_tangent):
    """Forward mode: `t_x * (1 or alpha) + (0 or t_alpha) * (0 or x)`, the
    first of each pair where x >= 0.

    Masks come before products, so the x >= 0 side gets exactly `t_x` for any
    slope, and the slope term there is 0 (not `inf * 0`).
    """
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
    """The `torch.where` kernel for torch.compile, which fuses it (Dynamo
    cannot trace a Function with a custom `jvp`)."""

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
    """A PReLU function saving only x and alpha, from a kernel pair.

    `backward_kernel(upstream, x, alpha, need_alpha)` returns the gradients
    of x and of alpha, the latter summed to alpha's shape and dtype, or None
    when `need_alpha` is false (a frozen slope). Under torch.compile,
    `_CompilablePReLU` runs instead, and under a torch.func transform,
    `_TransformablePReLU`.
    """

    # `forward` takes `ctx` itself rather than a separate `setup_context`:
    # torch's `apply` is several times faster for this form, which matters
    # for small tensors; torch.func requires the other form.
    class PReLUFunction(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, alpha):
            ctx.save_for_backward(x, alpha)
            ctx.save_for_forward(x, alpha)
            return forward_kernel(x, alpha)

        @staticmethod
        def symbolic(g, x, alpha):
            # For torch.onnx's TorchScript exporter (Keras's choice for
            # dynamic shapes): ONNX's PRelu broadcasts alpha to x, so one
            # node, without the reshapes around `torch.prelu`.
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
# Fixed kernel pairs, for tests and for comparing them.
prelu_fused = _make_function(_forward, _backward_fused) if _HAS_FUSED_BACKWARD else None
prelu_sliced = _make_function(_forward, _backward_sliced) if _HAS_VECTOR_KERNELS else None
prelu_where = _make_function(_forward_where, _backward_where)


prelu_training = prelu
