#!/usr/bin/env python3
"""Builds tests/fixtures from an independent implementation (PyTorch and torchvision).

Writes:
  images/            real photos from scikit-image (JPEG, PNG, grayscale, RGBA, and a JPEG
                     stored sideways with an EXIF orientation tag)
  preprocess.safetensors
                     for each image, torchvision's VGG preset (resize 256, antialiased
                     bilinear, center crop 224) as a [3, 224, 224] uint8 tensor: the values
                     ToTensor divides by 255, before normalisation
  nets.json          small torchvision-style VGG networks: layer list and options as the
                     `vgg` CLI spells them, weights file, input name
  <net>.pth          tiny_a's state dict as torch.save writes it (zip), tiny_bn's in the
                     legacy format (tiny_bn_legacy.pth)
  <net>*.onnx        tiny_a as torch.onnx.export writes it (tiny_a.onnx); tiny_a, tiny_bn and
                     tiny_init as today's PyTorch writes them with its defaults, from both
                     exporters: torch.export-based (the default; weights in an external
                     <net>_dynamo.onnx.data) and TorchScript-based (dynamo=False, which
                     folds batch norm into the convs and deduplicates identical
                     initializers, as tiny_init's zero biases, into Identity nodes:
                     <net>_ts.onnx); tiny_bn as the
                     ONNX model zoo's VGGs are laid out (BatchNormalization nodes, Gemm,
                     Dropout, no average pool: tiny_bn_zoo.onnx); tiny_a as tf2onnx converts
                     a Keras VGG (NHWC input and a transpose before the flatten, MatMul and
                     Add, a final Softmax: tiny_a_keras.onnx)
  <net>.safetensors  seeded random weights in torchvision's key names (f32; one net also in
                     f16 and bf16); tiny_init's drawn as torchvision initialises a VGG
                     (zero biases)
  inputs.safetensors network inputs: the two photos normalised ("photos", [2, 3, 224, 224])
                     and a random batch ("random32", [3, 3, 32, 32])
  logits.safetensors PyTorch's outputs for every net on its input, keyed by net name

Usage: python tools/make_fixtures.py [--out tests/fixtures]
Needs: torch, torchvision, scikit-image, safetensors, pillow, onnx (pip install ...).
"""

import argparse
import io
import json
import os

import numpy as np
import torch
import torch.nn as nn
from PIL import Image, ImageOps
from safetensors.torch import save_file
from skimage import data as skdata
from torchvision.models.vgg import make_layers
from torchvision.transforms import functional as F

torch.set_num_threads(2)


def preset(img):
    """torchvision's ImageClassification(crop_size=224, resize_size=256) up to ToTensor,
    as 8-bit values (ToTensor divides them by 255)."""
    img = F.resize(img, [256], interpolation=F.InterpolationMode.BILINEAR, antialias=True)
    img = F.center_crop(img, [224, 224])
    return F.pil_to_tensor(img)


MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)


def write_images(out):
    d = os.path.join(out, "images")
    os.makedirs(d, exist_ok=True)
    astronaut = Image.fromarray(skdata.astronaut())
    chelsea = Image.fromarray(skdata.chelsea())
    astronaut.save(os.path.join(d, "astronaut.jpg"), quality=90)
    chelsea.save(os.path.join(d, "chelsea.png"))
    Image.fromarray(skdata.camera()).resize((300, 300), Image.BILINEAR).save(
        os.path.join(d, "camera_gray.png"))
    coffee = Image.fromarray(skdata.coffee()).resize((300, 200), Image.BILINEAR).convert("RGBA")
    alpha = Image.linear_gradient("L").resize(coffee.size)
    coffee.putalpha(alpha)
    coffee.save(os.path.join(d, "coffee_rgba.png"))
    # Stored rotated 90 degrees; EXIF orientation 6 ("rotate 90 CW to view") makes it upright.
    rocket = Image.fromarray(skdata.rocket()).resize((320, 214), Image.BILINEAR)
    sideways = rocket.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    sideways.save(os.path.join(d, "rocket_exif6.jpg"), quality=92, exif=exif)
    names = ["astronaut.jpg", "chelsea.png", "camera_gray.png", "coffee_rgba.png",
             "rocket_exif6.jpg"]
    pre = {}
    for n in names:
        img = Image.open(os.path.join(d, n))
        img = ImageOps.exif_transpose(img).convert("RGB")
        pre[n] = preset(img).contiguous()
    save_file(pre, os.path.join(out, "preprocess.safetensors"))
    photos = torch.stack([pre["astronaut.jpg"], pre["chelsea.png"]]).float() / 255.0
    return (photos - MEAN) / STD


class Net(nn.Module):
    """torchvision's VGG layout (features, avgpool, classifier) at any size."""

    def __init__(self, features, last_channels, avgpool, hidden, classes):
        super().__init__()
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d(avgpool) if avgpool else nn.Identity()
        dims = last_channels * (avgpool[0] * avgpool[1] if avgpool else 1)
        layers = []
        for h in hidden:
            layers += [nn.Linear(dims, h), nn.ReLU(True), nn.Dropout()]
            dims = h
        layers.append(nn.Linear(dims, classes))
        self.classifier = nn.Sequential(*layers)

    def forward(self, x):
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


def features_from_spec(spec, in_channels, bn):
    """The `vgg` CLI's layer list (N, N:1, M, L) as an nn.Sequential in torchvision order."""
    layers, c = [], in_channels
    for tok in spec.split(","):
        if tok == "M":
            layers.append(nn.MaxPool2d(2, 2))
        elif tok == "L":
            layers.append(nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0))
        else:
            out, _, k = tok.partition(":")
            k = int(k or 3)
            layers.append(nn.Conv2d(c, int(out), kernel_size=k, padding=k // 2))
            if bn:
                layers.append(nn.BatchNorm2d(int(out)))
            layers.append(nn.ReLU(True))
            c = int(out)
    return nn.Sequential(*layers), c


def randomize(net, seed):
    """Seeded weights with non-trivial biases and batch-norm statistics."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                fan_in = m.weight[0].numel()
                bound = (6.0 / fan_in) ** 0.5
                m.weight.copy_((torch.rand(m.weight.shape, generator=g) * 2 - 1) * bound)
                m.bias.copy_((torch.rand(m.bias.shape, generator=g) * 2 - 1) * 0.1)
            elif isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_((torch.rand(n, generator=g) * 2 - 1) * 0.2)
                m.running_mean.copy_((torch.rand(n, generator=g) * 2 - 1) * 0.2)
                m.running_var.copy_(torch.rand(n, generator=g) * 1.5 + 0.5)


def torchvision_init(net, seed):
    """torchvision's VGG initialisation: Kaiming-normal convs (fan out), N(0, 0.01) linear
    layers, zero biases; so every bias is the same tensor of zeros, as in any VGG built
    with weights=None."""
    torch.manual_seed(seed)
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            nn.init.constant_(m.bias, 0)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.constant_(m.bias, 0)


def export_defaults(net, x, out, name):
    """The net as today's PyTorch exports it with its defaults, from both exporters: the
    file names, keyed by their tag in nets.json."""
    dynamo, ts = f"{name}_dynamo.onnx", f"{name}_ts.onnx"
    torch.onnx.export(net, (x,), os.path.join(out, dynamo), external_data=True)
    torch.onnx.export(net, (x,), os.path.join(out, ts), dynamo=False)
    return {"onnx_dynamo": dynamo, "onnx_ts": ts}


def state(net, dtype=torch.float32):
    return {k: v.to(dtype).contiguous() for k, v in net.state_dict().items()
            if v.is_floating_point()}


NETS = [
    # name, layer list, bn, input (c, h, w), avgpool, hidden, classes, input tensor
    ("tiny_a", "8,M,16,M,24,24,M,32,32,M,32,32,M", False, (3, 224, 224), (7, 7), [64, 64], 10,
     "photos"),
    ("tiny_bn", "8,M,16,M,24,24,M,32,32,M,32,32,M", True, (3, 224, 224), (7, 7), [64, 64], 10,
     "photos"),
    ("tiny_c_lrn", "8,L,M,16,M,24,24:1,M,32,32:1,M,32,M", False, (3, 224, 224), (7, 7), [48], 7,
     "photos"),
    ("cifar_like", "16,16,M,32,M,64,M", False, (3, 32, 32), (7, 7), [32], 10, "random32"),
    # torchvision's own initialisation (randomize is not applied).
    ("tiny_init", "8,M,16,M,24,24,M,32,32,M,32,32,M", False, (3, 224, 224), (7, 7), [64, 64],
     10, "photos"),
]


class Chain:
    """An ONNX graph built as one chain of nodes, each taking the previous one's output
    first; `name(op, k)` names the k-th node's output."""

    def __init__(self, first, name):
        self.nodes, self.inits, self.cur, self.k, self.name = [], [], first, 0, name

    def add(self, op, inputs, **attrs):
        from onnx import helper
        self.k += 1
        out = self.name(op, self.k)
        self.nodes.append(helper.make_node(op, [self.cur] + inputs, [out], name=out, **attrs))
        self.cur = out

    def init(self, name, a):
        from onnx import numpy_helper
        if isinstance(a, torch.Tensor):
            a = a.detach().numpy()
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(a, dtype=np.float32),
                                                  name))
        return name


def onnx_zoo(net, path, shape):
    """The net as the ONNX model zoo lays out its VGGs (converted from MXNet): NCHW,
    Conv / BatchNormalization / Relu / MaxPool, Flatten, Gemm with transB, Dropout."""
    import onnx
    from onnx import TensorProto, helper
    g = Chain("data", lambda op, k: f"{op.lower()}{k}")
    add, init = g.add, g.init

    for i, m in enumerate(net.features):
        if isinstance(m, nn.Conv2d):
            add("Conv", [init(f"conv{i}_weight", m.weight), init(f"conv{i}_bias", m.bias)],
                kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1])
        elif isinstance(m, nn.BatchNorm2d):
            add("BatchNormalization",
                [init(f"bn{i}_{n}", getattr(m, a)) for n, a in
                 (("gamma", "weight"), ("beta", "bias"), ("mean", "running_mean"),
                  ("var", "running_var"))], epsilon=m.eps)
        elif isinstance(m, nn.ReLU):
            add("Relu", [])
        elif isinstance(m, nn.MaxPool2d):
            add("MaxPool", [], kernel_shape=[2, 2], strides=[2, 2])
    add("Flatten", [], axis=1)
    for i, m in enumerate(net.classifier):
        if isinstance(m, nn.Linear):
            add("Gemm", [init(f"dense{i}_weight", m.weight), init(f"dense{i}_bias", m.bias)],
                transB=1)
        elif isinstance(m, nn.ReLU):
            add("Relu", [])
        elif isinstance(m, nn.Dropout):
            add("Dropout", [], ratio=0.5)
    graph = helper.make_graph(
        g.nodes, "vgg",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, ["N", *shape])],
        [helper.make_tensor_value_info(g.cur, TensorProto.FLOAT,
                                       ["N", net.classifier[-1].out_features])],
        g.inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 9)]), path)


def onnx_keras(net, path, shape):
    """The net as tf2onnx converts a Keras VGG: an NHWC input transposed to NCHW, convs
    with SAME padding, a transpose back to NHWC before the Reshape that flattens, dense
    layers as MatMul ([in, out], rows in (h, w, c) order) and Add, a final Softmax."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    g = Chain("input_1", lambda op, k: f"StatefulPartitionedCall/{op}_{k}")
    add, init = g.add, g.init

    add("Transpose", [], perm=[0, 3, 1, 2])
    c = shape[0]
    for i, m in enumerate(net.features):
        if isinstance(m, nn.Conv2d):
            add("Conv", [init(f"block_conv{i}/kernel", m.weight.detach().numpy()),
                         init(f"block_conv{i}/bias", m.bias.detach().numpy())],
                auto_pad="SAME_UPPER", strides=[1, 1], dilations=[1, 1])
            c = m.out_channels
        elif isinstance(m, nn.ReLU):
            add("Relu", [])
        elif isinstance(m, nn.MaxPool2d):
            add("MaxPool", [], kernel_shape=[2, 2], strides=[2, 2], auto_pad="VALID")
    side = shape[1] >> sum(isinstance(m, nn.MaxPool2d) for m in net.features)
    add("Transpose", [], perm=[0, 2, 3, 1])
    g.inits.append(numpy_helper.from_array(np.array([-1, c * side * side], dtype=np.int64),
                                           "flatten/Const"))
    add("Reshape", ["flatten/Const"])
    first = True
    linears = [m for m in net.classifier if isinstance(m, nn.Linear)]
    for j, m in enumerate(linears):
        w = m.weight.detach().numpy()
        if first:
            # Keras' Dense after Flatten takes the (h, w, c) order.
            w = w.reshape(-1, c, side, side).transpose(0, 2, 3, 1).reshape(w.shape[0], -1)
            first = False
        add("MatMul", [init(f"fc{j}/MatMul/ReadVariableOp", w.T)])
        add("Add", [init(f"fc{j}/BiasAdd/ReadVariableOp", m.bias.detach().numpy())])
        if j + 1 < len(linears):
            add("Relu", [])
    add("Softmax", [], axis=-1)
    graph = helper.make_graph(
        g.nodes, "tf2onnx",
        [helper.make_tensor_value_info("input_1", TensorProto.FLOAT,
                                       ["unk__1", shape[1], shape[2], shape[0]])],
        [helper.make_tensor_value_info(g.cur, TensorProto.FLOAT,
                                       ["unk__2", linears[-1].out_features])],
        g.inits)
    onnx.save(helper.make_model(graph, producer_name="tf2onnx",
                                opset_imports=[helper.make_opsetid("", 13)]), path)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests",
                                                  "fixtures"))
    args = ap.parse_args()
    out = os.path.normpath(args.out)
    os.makedirs(out, exist_ok=True)
    photos = write_images(out)
    g = torch.Generator().manual_seed(1234)
    inputs = {"photos": photos.contiguous(),
              "random32": (torch.rand(3, 3, 32, 32, generator=g) * 2 - 1).contiguous()}
    save_file(inputs, os.path.join(out, "inputs.safetensors"))
    meta, logits = [], {}
    for i, (name, spec, bn, (c, h, w), avgpool, hidden, classes, x) in enumerate(NETS):
        feats, last = features_from_spec(spec, c, bn)
        net = Net(feats, last, avgpool, hidden, classes)
        if name == "tiny_init":
            torchvision_init(net, 100 + i)
        else:
            randomize(net, 100 + i)
        net.eval()
        files = {"f32": f"{name}.safetensors"}
        save_file(state(net), os.path.join(out, files["f32"]))
        # The same state dicts as torch.save writes them, for the engine's .pth reader: the
        # zip format (the default) and the legacy one (torchvision's hub files; tiny_bn's
        # carries BN's integer num_batches_tracked too).
        if name == "tiny_a":
            files["pth"] = f"{name}.pth"
            torch.save(net.state_dict(), os.path.join(out, files["pth"]))
        if name == "tiny_bn":
            files["pth"] = f"{name}_legacy.pth"
            torch.save(net.state_dict(), os.path.join(out, files["pth"]),
                       _use_new_zipfile_serialization=False)
        # The same nets as ONNX graphs, for the engine's ONNX reader; PyTorch's logits are
        # the reference for all three (the Keras layout's Softmax comes after them).
        if name == "tiny_a":
            files["onnx"] = f"{name}.onnx"
            torch.onnx.export(net, inputs[x][:1], os.path.join(out, files["onnx"]),
                              dynamo=False, opset_version=13, input_names=["input"],
                              dynamic_axes={"input": {0: "batch"}})
            files["onnx_keras"] = f"{name}_keras.onnx"
            onnx_keras(net, os.path.join(out, files["onnx_keras"]), (c, h, w))
        if name in ("tiny_a", "tiny_bn", "tiny_init"):
            files.update(export_defaults(net, inputs[x][:1], out, name))
        if name == "tiny_bn":
            files["onnx_zoo"] = f"{name}_zoo.onnx"
            onnx_zoo(net, os.path.join(out, files["onnx_zoo"]), (c, h, w))
        with torch.no_grad():
            logits[name] = net(inputs[x]).contiguous()
        if name == "tiny_a":
            # The same net stored in f16 and bf16; PyTorch's reference runs those rounded
            # weights in f32, as the engine does after widening them.
            for tag, dt in (("f16", torch.float16), ("bf16", torch.bfloat16)):
                files[tag] = f"{name}_{tag}.safetensors"
                rounded = state(net, dt)
                save_file(rounded, os.path.join(out, files[tag]))
                net.load_state_dict({k: v.float() for k, v in rounded.items()}, strict=False)
                with torch.no_grad():
                    logits[f"{name}_{tag}"] = net(inputs[x]).contiguous()
        meta.append({"name": name, "model": spec, "bn": bn, "in_channels": c,
                     "input": [h, w], "avgpool": list(avgpool) if avgpool else None,
                     "hidden": hidden, "classes": classes, "weights": files, "input_tensor": x})
    save_file(logits, os.path.join(out, "logits.safetensors"))
    with open(os.path.join(out, "nets.json"), "w") as f:
        json.dump({"generator": f"torch {torch.__version__}", "nets": meta}, f, indent=1)
    print("wrote", out)


if __name__ == "__main__":
    main()
