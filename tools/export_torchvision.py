#!/usr/bin/env python3
"""Exports torchvision VGG weights to a safetensors file that `vgg infer --weights` loads.

  # ImageNet weights (torchvision downloads them once into its cache):
  python tools/export_torchvision.py vgg16 -o vgg16.safetensors
  # a state dict saved with torch.save (a .pth file), for any of the ten architectures:
  python tools/export_torchvision.py vgg16_bn --pth vgg16_bn-6c64b313.pth -o vgg16_bn.safetensors
  # seeded random weights (no download), e.g. to compare the engine with PyTorch:
  python tools/export_torchvision.py vgg16 --random --seed 0 -o vgg16_random.safetensors

Key names stay torchvision's (features.N.weight, classifier.6.bias, BN running stats);
PyTorch's integer num_batches_tracked is dropped. The file records the engine's model card
(architecture, torchvision's preprocessing, class names), so `vgg infer` needs no model
flags for it. (`vgg infer` and `vgg convert` also read .pth files directly, without Python.) --dtype f16 or bf16 halves the file; the
engine widens to f32 when it loads.

With --onnx dynamo or --onnx torchscript, writes the network as today's PyTorch exports it
with that exporter's defaults instead (torch.export-based: the graph in OUT, weights in
OUT.data beside it; TorchScript-based: one file, identical initializers deduplicated,
batch norm folded into the convs), for `vgg infer --weights OUT`. Needs onnx and, for
dynamo, onnxscript too.

With --logits OUT IMAGE..., also writes PyTorch's logits for those images (torchvision's
preprocessing of the weights' preset: resize 256, center crop 224, normalise) to OUT as a
safetensors tensor "logits", for comparing with `vgg infer --features fc8`.

Needs: torch, torchvision, safetensors (pip install torch torchvision safetensors).
"""

import argparse
import json
import sys

import torch
import torchvision
from safetensors.torch import save_file

ARCHS = ["vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn"]
DTYPES = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}


def build(args):
    ctor = getattr(torchvision.models, args.arch)
    if args.random:
        torch.manual_seed(args.seed)
        return ctor(weights=None), f"random (torch.manual_seed({args.seed}))"
    if args.pth:
        net = ctor(weights=None)
        sd = torch.load(args.pth, map_location="cpu", weights_only=True)
        if "state_dict" in sd and isinstance(sd["state_dict"], dict):
            sd = sd["state_dict"]
        net.load_state_dict(sd)
        return net, args.pth
    enum = torchvision.models.get_model_weights(args.arch)
    w = enum[args.weights] if args.weights else enum.DEFAULT
    try:
        return ctor(weights=w), f"torchvision {args.arch} {w}"
    except (OSError, RuntimeError) as e:
        # Offline (URLError is an OSError) or a broken download: one line, the way out.
        sys.exit(f"error: cannot get torchvision's {args.arch} weights {w} ({type(e).__name__}: "
                 f"{e}); pass --pth FILE (a torch.save state dict) or --random, or give the "
                 f".pth to `vgg infer --weights` directly")


def card(args, net):
    """The engine's model card (the metadata `vgg infer` reads instead of model flags): the
    architecture as the engine's Config serialises it, torchvision's preprocessing, and the
    class names (ImageNet's, shipped with torchvision, for 1000 classes)."""
    from torchvision.models.vgg import cfgs
    base = args.arch.removesuffix("_bn")
    cfg = cfgs[{"vgg11": "A", "vgg13": "B", "vgg16": "D", "vgg19": "E"}[base]]
    features = ["Pool" if v == "M" else {"Conv": {"out": v, "k": 3}} for v in cfg]
    fcs = [m for m in net.classifier if isinstance(m, torch.nn.Linear)]
    classes = fcs[-1].out_features
    config = {"name": args.arch, "features": features, "batch_norm": args.arch.endswith("_bn"),
              "in_channels": 3, "input": [224, 224], "avgpool": [7, 7],
              "hidden": [m.out_features for m in fcs[:-1]], "classes": classes,
              "dropout": 0.5, "lrn": {"size": 5, "alpha": 0.0001, "beta": 0.75, "k": 2.0}}
    names = [f"class {i}" for i in range(classes)]
    if classes == 1000:
        names = torchvision.models.VGG16_Weights.IMAGENET1K_V1.meta["categories"]
    return {"vgg.model": json.dumps(config, separators=(",", ":")),
            "vgg.preprocessing": json.dumps({"preset": "torchvision", "resize": 256,
                                             "crop": 224}),
            "vgg.classes": json.dumps(names)}


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("arch", choices=ARCHS)
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--pth", help="a state dict saved with torch.save")
    src.add_argument("--weights", help="torchvision weights enum member, e.g. IMAGENET1K_V1 "
                                        "[default: the architecture's DEFAULT]")
    src.add_argument("--random", action="store_true", help="seeded random weights")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dtype", choices=DTYPES, default="f32")
    ap.add_argument("-o", "--out", required=True,
                    help="the .safetensors file to write (the .onnx file with --onnx)")
    ap.add_argument("--onnx", choices=["dynamo", "torchscript"],
                    help="write ONNX from this exporter, at its defaults, instead")
    ap.add_argument("--logits", help="also write PyTorch's logits for --images here")
    ap.add_argument("--images", nargs="*", default=[])
    args = ap.parse_args()
    if args.logits and not args.images:
        ap.error("--logits needs --images")

    net, source = build(args)
    net.eval()
    sd = {k: v.to(DTYPES[args.dtype]).contiguous() for k, v in net.state_dict().items()
          if v.is_floating_point()}
    n = sum(v.numel() for k, v in sd.items() if "running" not in k)
    if args.onnx:
        if args.dtype != "f32":
            ap.error("--onnx writes the f32 network")
        x = torch.zeros(1, 3, 224, 224)
        # As a user calls it: the example input and the exporter, nothing else.
        torch.onnx.export(net, (x,), args.out, dynamo=args.onnx == "dynamo")
    else:
        save_file(sd, args.out, metadata={"arch": args.arch, "source": source,
                                          "format": "torchvision VGG state dict",
                                          **card(args, net)})
    print(f"wrote {args.out}: {len(sd)} tensors, {n:,} parameters, {args.dtype}, from {source}")

    if args.logits:
        from PIL import Image, ImageOps
        from torchvision.models.vgg import VGG16_Weights
        preset = VGG16_Weights.IMAGENET1K_V1.transforms()  # the same preset for every VGG
        if args.dtype != "f32":
            net.load_state_dict({k: v.float() for k, v in sd.items()}, strict=False)
        xs = [preset(ImageOps.exif_transpose(Image.open(p)).convert("RGB"))
              for p in args.images]
        with torch.no_grad():
            logits = net(torch.stack(xs)).contiguous()
        save_file({"logits": logits}, args.logits,
                  metadata={"images": "\n".join(args.images)})
        top = logits.softmax(1).topk(5)
        for p, i in zip(args.images, top.indices.tolist()):
            print(f"{p}: PyTorch top-5 {i}")


if __name__ == "__main__":
    sys.exit(main())
