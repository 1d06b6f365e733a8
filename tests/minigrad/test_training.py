"""End to end: a small MLP built from nn learns a nonlinear problem."""

import numpy as np

from minigrad import Tensor, nn, optim
from minigrad import functional as F


def two_spirals(n_per_class, rng):
    t = np.sqrt(rng.uniform(0.05, 1, n_per_class)) * 3 * np.pi
    arm = np.stack([t * np.cos(t), t * np.sin(t)], axis=1) / (3 * np.pi)
    x = np.concatenate([arm, -arm]) + rng.normal(0, 0.01, (2 * n_per_class, 2))
    y = np.concatenate([np.zeros(n_per_class, int), np.ones(n_per_class, int)])
    return x.astype(np.float32), y


def test_mlp_learns_two_spirals_to_full_training_accuracy():
    rng = np.random.default_rng(0)
    x, y = two_spirals(100, rng)
    model = nn.Sequential(nn.Linear(2, 64, rng=rng), nn.Tanh(), nn.Linear(64, 64, rng=rng),
                          nn.Tanh(), nn.Linear(64, 2, rng=rng))  # fmt: skip
    opt = optim.Adam(model.parameters(), lr=0.01)
    inputs = Tensor(x)
    for _ in range(1500):
        loss = F.cross_entropy(model(inputs), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if (model(inputs).data.argmax(axis=1) == y).all():
            break
    accuracy = (model(inputs).data.argmax(axis=1) == y).mean()
    assert accuracy == 1.0, f"training accuracy {accuracy}, loss {loss.item():.4f}"


def test_mlp_learns_xor():
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
    y = np.array([0, 1, 1, 0])
    model = nn.Sequential(nn.Linear(2, 8, rng=1), nn.ReLU(), nn.Linear(8, 2, rng=2))
    opt = optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    for _ in range(300):
        loss = F.cross_entropy(model(Tensor(x)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert (model(Tensor(x)).data.argmax(axis=1) == y).all()
    assert loss.item() < 0.05
