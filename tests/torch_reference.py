"""Hand-written PyTorch (float64) twins of the networks the tests generate."""

import torch

torch.set_default_dtype(torch.float64)

ACT = {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "relu": torch.relu,
       "softplus": torch.nn.functional.softplus, "identity": lambda x: x, "sin": torch.sin}


def mlp_loss(params, u, y, acts, loss):
    """params = [W1, b1, W2, b2, ...] as tensors; the output layer is linear."""
    h = torch.as_tensor(u)
    layers = len(params) // 2
    for k in range(layers):
        h = params[2 * k] @ h + params[2 * k + 1]
        if k < layers - 1:
            h = ACT[acts[k]](h)
    y = torch.as_tensor(y)
    if loss == "squared":
        return ((h - y) ** 2).sum() / 2
    return -(y * torch.log_softmax(h, dim=0)).sum()


def tensors(weights, names):
    return [torch.tensor(weights[n].copy(), requires_grad=True) for n in names]
