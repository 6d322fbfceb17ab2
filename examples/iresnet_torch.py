"""A PyTorch IResNet with the parameter names of InsightFace's `iresnet.py`.

The original of what `examples.iresnet` converts, for its tests and the
deployment benchmark: a model whose `state_dict` has the keys and shapes of a
real ArcFace `backbone.pth`, with random weights (`randomize`) instead of
trained ones. Needs torch.
"""

import torch

from examples import iresnet


class _Block(torch.nn.Module):
    def __init__(self, in_channels, channels, stride):
        super().__init__()
        self.bn1 = torch.nn.BatchNorm2d(in_channels, eps=1e-5)
        self.conv1 = torch.nn.Conv2d(in_channels, channels, 3, padding=1, bias=False)
        self.bn2 = torch.nn.BatchNorm2d(channels, eps=1e-5)
        self.prelu = torch.nn.PReLU(channels)
        self.conv2 = torch.nn.Conv2d(channels, channels, 3, stride, padding=1, bias=False)
        self.bn3 = torch.nn.BatchNorm2d(channels, eps=1e-5)
        self.downsample = None
        if stride != 1 or in_channels != channels:
            self.downsample = torch.nn.Sequential(
                torch.nn.Conv2d(in_channels, channels, 1, stride, bias=False),
                torch.nn.BatchNorm2d(channels, eps=1e-5),
            )

    def forward(self, x):
        shortcut = x if self.downsample is None else self.downsample(x)
        y = self.prelu(self.bn2(self.conv1(self.bn1(x))))
        return self.bn3(self.conv2(y)) + shortcut


class TorchIResNet(torch.nn.Module):
    """InsightFace's IResNet forward pass (eval mode is what gets converted)."""

    def __init__(self, depth=18, input_size=112, num_features=512, dropout=0.2):
        super().__init__()
        blocks = iresnet.stage_blocks(depth)
        self.conv1 = torch.nn.Conv2d(3, 64, 3, padding=1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(64, eps=1e-5)
        self.prelu = torch.nn.PReLU(64)
        in_channels = 64
        for stage, (count, channels) in enumerate(
            zip(blocks, (64, 128, 256, 512), strict=True), start=1
        ):
            stage_blocks = [_Block(in_channels, channels, 2)]
            stage_blocks += [_Block(channels, channels, 1) for _ in range(count - 1)]
            setattr(self, f"layer{stage}", torch.nn.Sequential(*stage_blocks))
            in_channels = channels
        self.bn2 = torch.nn.BatchNorm2d(512, eps=1e-5)
        self.dropout = torch.nn.Dropout(dropout)
        grid = input_size // 16
        self.fc = torch.nn.Linear(512 * grid * grid, num_features)
        self.features = torch.nn.BatchNorm1d(num_features, eps=1e-5)

    def forward(self, x):
        x = self.prelu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.dropout(torch.flatten(self.bn2(x), 1))
        return self.features(self.fc(x))


def randomize(model, seed=0):
    """Random weights, BatchNorm statistics and affine terms, and PReLU slopes.

    Slopes span [-0.5, 1.5]: negative, in (0, 1) and above 1.
    """
    generator = torch.Generator().manual_seed(seed)

    def uniform(tensor, low, high):
        tensor.copy_(torch.rand(tensor.shape, generator=generator) * (high - low) + low)

    def normal(tensor, std):
        tensor.copy_(torch.randn(tensor.shape, generator=generator) * std)

    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
                normal(module.weight, (1.0 / module.weight[0].numel()) ** 0.5)
                if module.bias is not None:
                    normal(module.bias, 0.1)
            elif isinstance(module, (torch.nn.BatchNorm2d, torch.nn.BatchNorm1d)):
                uniform(module.weight, 0.5, 1.5)
                normal(module.bias, 0.2)
                normal(module.running_mean, 0.2)
                uniform(module.running_var, 0.5, 2.0)
            elif isinstance(module, torch.nn.PReLU):
                uniform(module.weight, -0.5, 1.5)
    return model.eval()


def torch_embeddings(model, images):
    """Eval-mode embeddings of channels_last `images`."""
    with torch.no_grad():
        return model(torch.from_numpy(images).permute(0, 3, 1, 2)).numpy()
