"""PyTorch PReLU kernel: an `autograd.Function` that saves only x and alpha."""

import torch

from keras_prelu.kernels._reduce import broadcast_reduction_axes


class _PReLUFunction(torch.autograd.Function):
    @staticmethod
    def forward(x, alpha):
        return torch.where(x >= 0, x, x * alpha)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(*inputs)

    @staticmethod
    def backward(ctx, upstream):
        x, alpha = ctx.saved_tensors
        nonnegative = x >= 0
        grad_x = grad_alpha = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.where(nonnegative, upstream, upstream * alpha)
        if ctx.needs_input_grad[1]:
            per_element = torch.where(
                nonnegative, torch.zeros_like(upstream), upstream * x
            )
            accumulation_dtype = torch.promote_types(
                per_element.dtype, torch.float32
            )
            axes = broadcast_reduction_axes(x.ndim, alpha.shape)
            # `torch.sum(dim=())` would reduce every axis, not none.
            if axes:
                per_element = torch.sum(
                    per_element, dim=axes, keepdim=True, dtype=accumulation_dtype
                )
            grad_alpha = per_element.reshape(alpha.shape).to(alpha.dtype)
        return grad_x, grad_alpha


def prelu(x, alpha):
    return _PReLUFunction.apply(x, alpha)
