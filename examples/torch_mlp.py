"""A two-layer MLP with twinop's fused bias + GELU in place of GELU(nn.Linear(x)), trained for
a few steps on synthetic data. Prints one `step N loss X` line per step.

    python examples/torch_mlp.py
"""
import torch
from torch import nn

import twinop.torch

torch.manual_seed(0)
features, hidden, steps = 16, 64, 30

# nn.Linear(bias=False) + BiasAct is act(nn.Linear(x)) with the bias add fused into the activation.
model = nn.Sequential(
    nn.Linear(features, hidden, bias=False),
    twinop.torch.BiasAct(hidden, act="gelu"),
    nn.Linear(hidden, 1),
)
print(model)

# Synthetic regression target: a smooth function of the inputs.
x = torch.randn(256, features)
y = torch.sin(x[:, :1]) + 0.5 * x[:, 1:2] * x[:, 2:3]

optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
for step in range(steps):
    optimizer.zero_grad()
    loss = nn.functional.mse_loss(model(x), y)
    loss.backward()
    optimizer.step()
    print(f"step {step} loss {loss.item():.6f}")
