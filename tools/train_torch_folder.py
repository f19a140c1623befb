#!/usr/bin/env python3
"""Trains in PyTorch what `vgg train --format folder` trains, for comparing schedules and
defaults with the engine on the same images: a torchvision-layout VGG (features as the
`vgg` layer list, adaptive average pool, classifier with dropout), the engine's folder
preprocessing (resize the shorter side, center crop, scale to [0, 1]), its augmentation
(random horizontal flip and a random crop of the image padded by 4 pixels), SGD with
momentum, weight decay and cross-entropy, Kaiming-normal convs (fan out) and N(0, 0.01)
linear layers as torchvision initialises a VGG. Prints one line per epoch (loss, held-out
accuracy, rate) and the last accuracy as JSON.

  python tools/train_torch_folder.py --data D/train --val D/test --model 16,M,32,M \\
      --input 32 --hidden 64 --epochs 15 --lr 0.05 --schedule constant

--schedule: constant; plateau:P (ReduceLROnPlateau on held-out accuracy, factor 0.1,
patience P-1 so that it divides after P flat epochs as the engine counts them, three
divisions at most as the engine's); step:E:F (StepLR); torchvision (the reference
recipe's StepLR(30, 0.1), which a run under 30 epochs never reaches).

Needs: torch, torchvision, pillow.
"""

import argparse
import json
import os

import torch
import torch.nn as nn
from PIL import Image
from torchvision.transforms import functional as F

torch.set_num_threads(2)


def load(folder, side):
    classes = sorted(d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d)))
    xs, ys = [], []
    for k, c in enumerate(classes):
        for f in sorted(os.listdir(os.path.join(folder, c))):
            img = Image.open(os.path.join(folder, c, f)).convert("RGB")
            img = F.center_crop(F.resize(img, [side]), [side, side])
            xs.append(F.to_tensor(img))
            ys.append(k)
    return torch.stack(xs), torch.tensor(ys), classes


def net(spec, hidden, classes, dropout=True):
    layers, c = [], 3
    for tok in spec.split(","):
        if tok == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(c, int(tok), 3, padding=1), nn.ReLU(True)]
            c = int(tok)
    dims, head = c * 49, []
    for h in hidden:
        head += [nn.Linear(dims, h), nn.ReLU(True)] + ([nn.Dropout()] if dropout else [])
        dims = h
    head.append(nn.Linear(dims, classes))
    m = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(7), nn.Flatten(), *head)
    for mod in m.modules():
        if isinstance(mod, nn.Conv2d):
            nn.init.kaiming_normal_(mod.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(mod.bias)
        elif isinstance(mod, nn.Linear):
            nn.init.normal_(mod.weight, 0, 0.01)
            nn.init.zeros_(mod.bias)
    return m


def augment(x, g):
    n, _, h, w = x.shape
    flip = torch.rand(n, generator=g) < 0.5
    x = torch.where(flip.view(n, 1, 1, 1), x.flip(3), x)
    padded = nn.functional.pad(x, (4, 4, 4, 4))
    out = torch.empty_like(x)
    for i in range(n):
        dy, dx = torch.randint(0, 9, (2,), generator=g).tolist()
        out[i] = padded[i, :, dy:dy + h, dx:dx + w]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--val", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--input", type=int, required=True)
    ap.add_argument("--hidden", type=int, nargs="+", default=[4096, 4096])
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--weight-decay", type=float, default=5e-4)
    ap.add_argument("--schedule", default="constant")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    x, y, classes = load(args.data, args.input)
    vx, vy, vclasses = load(args.val, args.input)
    assert classes == vclasses, (classes, vclasses)
    m = net(args.model, args.hidden, len(classes))
    opt = torch.optim.SGD(m.parameters(), lr=args.lr, momentum=0.9,
                          weight_decay=args.weight_decay)
    kind, *rest = args.schedule.split(":")
    sched, drops = None, 0
    if kind == "plateau":
        patience = int(rest[0]) if rest else 1
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", factor=0.1,
                                                           patience=patience - 1)
    elif kind == "step":
        sched = torch.optim.lr_scheduler.StepLR(opt, int(rest[0]), float(rest[1]))
    elif kind == "torchvision":
        sched = torch.optim.lr_scheduler.StepLR(opt, 30, 0.1)
    g = torch.Generator().manual_seed(args.seed)
    acc = 0.0
    for epoch in range(1, args.epochs + 1):
        m.train()
        order = torch.randperm(len(x), generator=g)
        total, seen = 0.0, 0
        for i in range(0, len(x), args.batch_size):
            idx = order[i:i + args.batch_size]
            loss = nn.functional.cross_entropy(m(augment(x[idx], g)), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            seen += len(idx)
        m.eval()
        with torch.no_grad():
            acc = (m(vx).argmax(1) == vy).float().mean().item()
        lr = opt.param_groups[0]["lr"]
        print(f"epoch {epoch:2}: loss {total / seen:.4f}, held-out accuracy {acc:.3f}, "
              f"rate {lr:.2g}")
        if kind == "plateau":
            if drops < 3:
                sched.step(acc)
                drops += opt.param_groups[0]["lr"] < lr
        elif sched is not None:
            sched.step()
    print(json.dumps({"schedule": args.schedule, "accuracy": acc, "epochs": args.epochs}))


if __name__ == "__main__":
    main()
