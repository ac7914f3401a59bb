"""The last Function of a chain of derivatives: a Function whose own derivative, in either mode,
is an error rather than a silently wrong (or, under torch.func, silently dropped) next order."""
import torch


class NoDerivative(torch.autograd.Function):
    """Subclasses set MESSAGE and define forward; differentiating them raises NotImplementedError."""
    MESSAGE = ""
    generate_vmap_rule = True

    @staticmethod
    def setup_context(ctx, inputs, output):
        pass

    @classmethod
    def backward(cls, ctx, *grads):
        raise NotImplementedError(cls.MESSAGE)

    @classmethod
    def jvp(cls, ctx, *tangents):
        raise NotImplementedError(cls.MESSAGE)
