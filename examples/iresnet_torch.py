"""The PyTorch side of `examples.iresnet`: InsightFace's IResNet and its checkpoints.

`TorchIResNet` has the parameter names of InsightFace's
`arcface_torch/backbones/iresnet.py`: its `state_dict` is shaped like a real
`backbone.pth`. Needs torch.
"""

import os
import pickle
import re
from collections.abc import Mapping

import numpy as np
import torch

from examples import iresnet

# Containers and key prefixes (DataParallel, torch.compile) of training scripts.
WRAPPER_KEYS = ("state_dict", "model", "state_dict_backbone")
WRAPPER_PREFIXES = ("module.", "_orig_mod.")


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
    """InsightFace's IResNet in eval mode, without the dropout that is only active in training."""

    def __init__(self, depth=18, input_size=iresnet.INPUT_SIZE, num_features=iresnet.NUM_FEATURES):
        super().__init__()
        blocks = iresnet.stage_blocks(depth)
        self.conv1 = torch.nn.Conv2d(3, 64, 3, padding=1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(64, eps=1e-5)
        self.prelu = torch.nn.PReLU(64)
        in_channels = 64
        for stage, (count, channels) in enumerate(
            zip(blocks, iresnet.STAGE_CHANNELS, strict=True), start=1
        ):
            stage_blocks = [_Block(in_channels, channels, 2)]
            stage_blocks += [_Block(channels, channels, 1) for _ in range(count - 1)]
            setattr(self, f"layer{stage}", torch.nn.Sequential(*stage_blocks))
            in_channels = channels
        self.bn2 = torch.nn.BatchNorm2d(512, eps=1e-5)
        grid = input_size // iresnet.DOWNSAMPLING
        self.fc = torch.nn.Linear(512 * grid * grid, num_features)
        self.features = torch.nn.BatchNorm1d(num_features, eps=1e-5)

    def forward(self, x):
        x = self.prelu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.features(self.fc(torch.flatten(self.bn2(x), 1)))


def randomize(model, seed=0):
    """Random weights and BatchNorm statistics; PReLU slopes in [-0.5, 1.5], beyond 0 and 1."""
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
    """Eval-mode embeddings of channels_last `images`, computed in the model's dtype."""
    dtype = next(model.parameters()).dtype
    with torch.no_grad():
        return model(torch.from_numpy(images).permute(0, 3, 1, 2).to(dtype)).numpy()


def reference_embeddings(weights, images, depth=18, input_size=iresnet.INPUT_SIZE):
    """The embeddings of the PyTorch original holding `weights`, computed in float64."""
    with torch.device("meta"):  # no memory until the weights are assigned
        model = TorchIResNet(depth, input_size, weights["fc.bias"].shape[0])
    model.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()}, assign=True)
    return torch_embeddings(model.double().eval(), images)


"""
## Read and check a checkpoint

`torch.load(weights_only=True)` refuses a whole pickled model, which would run
arbitrary code. The wrappers of training scripts are removed, nothing is
guessed, and every problem is reported at once, naming the keys.
"""


def state_dict_shapes(
    depth=18, input_size=iresnet.INPUT_SIZE, num_features=iresnet.NUM_FEATURES
) -> dict:
    """The keys and shapes of an InsightFace IResNet state_dict, without BatchNorm counters."""
    iresnet.check_sizes(input_size, num_features)
    with torch.device("meta"):  # shapes only
        state = TorchIResNet(depth, input_size, num_features).state_dict()
    return {k: tuple(v.shape) for k, v in state.items() if not k.endswith("num_batches_tracked")}


def load_torch_checkpoint(path) -> dict:
    """Reads a `backbone.pth` into a dict of NumPy arrays (see `unwrap_state_dict`)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No checkpoint file at '{path}'. Received: path={path!r}")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as error:
        # torch's first line says why; it may carry terminal colour codes.
        reason = re.sub(r"\x1b\[[0-9;]*m", "", str(error)).strip()
        reason = reason.splitlines()[0] if reason else type(error).__name__
        raise ValueError(
            f"'{path}' is not a state_dict that torch.load(weights_only=True) can read "
            f"({reason}). A whole pickled model is refused: save `model.state_dict()`. "
            f"Received: path={path!r}"
        ) from error
    return unwrap_state_dict(loaded, source=f"'{path}'")


def unwrap_state_dict(checkpoint, source="The checkpoint") -> dict:
    """The state_dict inside `checkpoint` as NumPy arrays, half precision widened to float32."""
    if not isinstance(checkpoint, Mapping):
        hint = " Pass `model.state_dict()`." if hasattr(checkpoint, "state_dict") else ""
        raise ValueError(
            f"{source} is not a state_dict (a dict of parameter names to tensors).{hint} "
            f"Received: an object of type {type(checkpoint).__name__}"
        )
    state = checkpoint
    wrappers = [key for key in WRAPPER_KEYS if isinstance(state.get(key), Mapping)]
    tensors = [v for v in state.values() if isinstance(v, (torch.Tensor, np.ndarray))]
    if len(wrappers) == 1 and not tensors:
        state = state[wrappers[0]]
    if not all(isinstance(key, str) for key in state):
        raise ValueError(
            f"{source} is not a state_dict: its keys must be parameter names. "
            f"Received: keys {_some(list(state))}"
        )
    while state and (
        prefix := next((p for p in WRAPPER_PREFIXES if all(k.startswith(p) for k in state)), None)
    ):
        state = {key[len(prefix) :]: value for key, value in state.items()}
    arrays = {key: _to_numpy(value) for key, value in state.items()}
    not_arrays = [key for key, array in arrays.items() if array is None]
    if not_arrays:
        raise ValueError(
            f"{source} is not a state_dict: {len(not_arrays)} entries are not tensors "
            f"or numeric arrays: {_some(not_arrays)}. Received: keys {_some(list(state))}"
        )
    return arrays


def _to_numpy(value):
    """A NumPy array for a tensor or array, or None for anything else."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        if value.is_floating_point() and value.element_size() == 2:
            value = value.float()  # bfloat16, which NumPy lacks; float16 too, exactly
        value = value.numpy()
    if not isinstance(value, (np.ndarray, np.generic, int, float)) or isinstance(value, bool):
        return None
    array = np.asarray(value)
    return array if array.dtype.kind in "biuf" else None


def _some(items, limit=4) -> str:
    shown = ", ".join(f"'{item}'" for item in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _hints(state_dict, blocks, input_size) -> list[str]:
    """What the keys suggest instead of the requested depth and input size."""
    hints = []
    found = [
        len({key.split(".")[1] for key in state_dict if key.startswith(f"layer{stage}.")})
        for stage in range(1, 5)
    ]
    if all(found) and tuple(found) != blocks:
        named = [depth for depth, known in iresnet.DEPTHS.items() if known == tuple(found)]
        hints.append(f"its blocks per stage are {found}: try depth={named[0] if named else found}")
    fc, channels = state_dict.get("fc.weight"), iresnet.STAGE_CHANNELS[-1]
    side = round((fc.shape[1] / channels) ** 0.5) if fc is not None and fc.ndim == 2 else 0
    if side and side * side * channels == fc.shape[1] and side * iresnet.DOWNSAMPLING != input_size:
        hints.append(
            f"its fc.weight takes {fc.shape[1]} = {channels}*{side}*{side} inputs, "
            f"which fits input_size={side * iresnet.DOWNSAMPLING}"
        )
    return hints


def check_state_dict(state_dict, depth=18, input_size=iresnet.INPUT_SIZE, num_features=None):
    """Checks keys, shapes and values against the architecture; returns float32 arrays."""
    blocks = iresnet.stage_blocks(depth)
    if num_features is None:
        fc = state_dict.get("fc.weight")
        num_features = fc.shape[0] if fc is not None and fc.ndim == 2 else iresnet.NUM_FEATURES
    expected = state_dict_shapes(blocks, input_size, num_features)
    counters = {key.replace("running_var", "num_batches_tracked") for key in expected}
    present = [key for key in expected if key in state_dict]
    floats = [key for key in present if state_dict[key].dtype.kind == "f"]
    findings = {
        "missing": [key for key in expected if key not in state_dict],
        "unexpected": [key for key in state_dict if key not in expected and key not in counters],
        "with the wrong shape": [
            f"{key} {state_dict[key].shape} (expected {expected[key]})"
            for key in present
            if state_dict[key].shape != expected[key]
        ],
        "not floating point": [key for key in present if key not in floats],
        "with NaN or infinite values": [
            key for key in floats if not np.isfinite(state_dict[key]).all()
        ],
        "with negative variances": [
            key for key in floats if key.endswith(".running_var") and (state_dict[key] < 0).any()
        ],
    }
    problems = [
        f"{len(keys)} key{'s' if len(keys) > 1 else ''} {what}: {_some(keys)}"
        for what, keys in findings.items()
        if keys
    ]
    if problems:
        hints = _hints(state_dict, blocks, input_size)
        note = f" Note: {'; '.join(hints)}." if hints else ""
        raise ValueError(
            f"The state_dict does not fit {iresnet.model_name(blocks)} (blocks per stage "
            f"{list(blocks)}, input_size={input_size}, num_features={num_features}): "
            f"{'; '.join(problems)}.{note} Received: {len(state_dict)} keys"
        )
    return {key: state_dict[key].astype("float32") for key in expected}
