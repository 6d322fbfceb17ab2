"""PyTorch PReLU kernel: torch's fused PReLU kernels, our gradient convention.

`torch.nn.functional.prelu` only takes a slope per channel at dim 1, so this
calls the broadcasting kernels behind it. Their backward puts x == 0 on the
negative branch (d/dx = alpha); the convention here is the identity branch,
so those entries are patched. Where a torch build lacks the kernels, a plain
`torch.where` formulation with the same results is used instead.
"""

import torch

from keras_prelu.kernels._reduce import broadcast_reduction_axes

_ATEN = torch.ops.aten
HAS_FUSED_KERNELS = hasattr(_ATEN, "_prelu_kernel") and hasattr(
    _ATEN, "_prelu_kernel_backward"
)


def _forward_fused(x, alpha):
    return _ATEN._prelu_kernel(x, alpha)


def _forward_where(x, alpha):
    return torch.where(x >= 0, x, x * alpha)


def _backward_fused(upstream, x, alpha):
    grad_x, per_element = _ATEN._prelu_kernel_backward(upstream, x, alpha)
    # In place: a fresh 4-byte-per-element buffer costs page faults on CPU.
    # Not under autograd-of-autograd, where grad_x may be needed as is.
    if torch.is_grad_enabled():
        return torch.where(x == 0, upstream, grad_x), per_element
    return torch.where(x == 0, upstream, grad_x, out=grad_x), per_element


def _backward_where(upstream, x, alpha):
    nonnegative = x >= 0
    grad_x = torch.where(nonnegative, upstream, upstream * alpha)
    per_element = torch.where(nonnegative, torch.zeros_like(upstream), upstream * x)
    return grad_x, per_element


def _sum_to_alpha(per_element, alpha):
    axes = broadcast_reduction_axes(per_element.ndim, alpha.shape)
    # `torch.sum(dim=())` would reduce every axis, not none.
    if axes:
        per_element = torch.sum(
            per_element,
            dim=axes,
            keepdim=True,
            dtype=torch.promote_types(per_element.dtype, torch.float32),
        )
    return per_element.reshape(alpha.shape).to(alpha.dtype)


def make_function(forward_kernel, backward_kernel):
    """An autograd.Function saving only x and alpha, from a kernel pair."""

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
            grad_x, per_element = backward_kernel(upstream, x, alpha)
            grad_alpha = _sum_to_alpha(per_element, alpha) if ctx.needs_input_grad[1] else None
            return grad_x, grad_alpha

    return PReLUFunction


FusedPReLU = make_function(_forward_fused, _backward_fused)
WherePReLU = make_function(_forward_where, _backward_where)
_FUNCTION = FusedPReLU if HAS_FUSED_KERNELS else WherePReLU


def prelu(x, alpha):
    return _FUNCTION.apply(x, alpha)
