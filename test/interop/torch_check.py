"""Checks an msn-web export-torch file with real PyTorch (run by export-torch-pytorch.test.ts).

usage: python3 torch_check.py job.json

The job (written by the test) names the exported file, the official fixture
checkpoints whose pickles define the allowed globals, and what the file must
hold: the expected arrays in msn-web's layout as raw little-endian float32
files (converted to torch's layout here, with numpy, independently of the
TypeScript exporter), the optimizer step and hyper-parameters, the scalars.
Optionally `compare_to`: an official checkpoint the export must equal.

Order of the checks: (1) the pickle is scanned with pickletools and loaded by a
restricted Unpickler that knows only the allowed globals, BEFORE torch.load
runs anything; (2) torch.load(weights_only=True) must work on torch >= 2, and
on torch 1.13 must fail only for BINFLOAT (opcode 71), exactly as on the
official fixtures; (3) torch.load(weights_only=False); (4) the official code
path: state dicts into a replica of the official module tree wrapped like DDP
(strict load, same key order), AdamW built as msn_train.init_opt builds it
loads `opt` and takes a step; (5) values.
Prints one line per check; exits 1 with the reason on the first failure.
"""
import collections
import io
import json
import math
import os
import pickle
import pickletools
import sys
import zipfile

import numpy as np
import torch
import torch.nn as nn


def fail(msg):
    print(f"FAIL: {msg}", flush=True)
    sys.exit(1)


def ok(msg):
    print(f"ok: {msg}", flush=True)


def pickle_of(path):
    z = zipfile.ZipFile(path)
    pkls = [n for n in z.namelist() if n.endswith("/data.pkl")]
    if len(pkls) != 1:
        fail(f"{path}: expected one */data.pkl, found {pkls}")
    return z.read(pkls[0])


def globals_and_ops(data):
    globs, ops, proto = set(), set(), None
    for op, arg, _ in pickletools.genops(data):
        ops.add(op.name)
        if op.name == "PROTO":
            proto = arg
        if op.name == "GLOBAL":
            globs.add(arg.replace(" ", "."))
        if op.name == "STACK_GLOBAL":
            globs.add("<STACK_GLOBAL>")
    return globs, ops, proto


# Opcodes that only build data (no INST/OBJ/NEWOBJ/STACK_GLOBAL/EXT, no BUILD on our side).
DATA_OPS = {
    "PROTO", "STOP", "MARK", "NONE", "NEWTRUE", "NEWFALSE", "BININT", "BININT1", "BININT2", "LONG1", "BINFLOAT",
    "BINUNICODE", "EMPTY_DICT", "EMPTY_LIST", "EMPTY_TUPLE", "TUPLE", "TUPLE1", "TUPLE2", "TUPLE3", "SETITEM",
    "SETITEMS", "APPEND", "APPENDS", "BINPUT", "LONG_BINPUT", "BINGET", "LONG_BINGET", "GLOBAL", "REDUCE", "BINPERSID",
}


class Restricted(pickle.Unpickler):
    """Resolves only the allowed globals, to inert stand-ins: nothing of torch runs."""

    def __init__(self, data, allowed):
        super().__init__(io.BytesIO(data))
        self.allowed = allowed

    def find_class(self, module, name):
        full = f"{module}.{name}"
        if full not in self.allowed:
            raise pickle.UnpicklingError(f"global {full} is not allowed")
        if full == "collections.OrderedDict":
            return collections.OrderedDict
        if full == "torch._utils._rebuild_tensor_v2":
            return lambda storage, offset, size, stride, *rest: ("tensor", storage, offset, tuple(size), tuple(stride))
        return ("storage-type", full)

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage" and pid[3] == "cpu"):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        return ("storage", pid[1][1], pid[2], pid[4])


# -- a replica of the official module tree (facebookresearch/msn src/deit.py + msn_train.init_model):
# names, nesting and registration order only; state_dict order follows from them.
class PatchEmbed(nn.Module):
    def __init__(self, c, d, p):
        super().__init__()
        self.proj = nn.Conv2d(c, d, kernel_size=p, stride=p)


class Attention(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.qkv = nn.Linear(d, 3 * d)
        self.attn_drop = nn.Dropout(0.0)
        self.proj = nn.Linear(d, d)
        self.proj_drop = nn.Dropout(0.0)


class Mlp(nn.Module):
    def __init__(self, d, h):
        super().__init__()
        self.fc1 = nn.Linear(d, h)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(h, d)
        self.drop = nn.Dropout(0.0)


class Block(nn.Module):
    def __init__(self, d, h):
        super().__init__()
        self.norm1 = nn.LayerNorm(d, eps=1e-6)
        self.attn = Attention(d)
        self.drop_path = nn.Identity()
        self.norm2 = nn.LayerNorm(d, eps=1e-6)
        self.mlp = Mlp(d, h)


class VisionTransformer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d, p = cfg["embedDim"], cfg["patchSize"]
        n = (cfg["imgSize"] // p) ** 2
        self.patch_embed = PatchEmbed(cfg["inChannels"], d, p)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.pos_embed = nn.Parameter(torch.zeros(1, n + 1, d))
        self.pos_drop = nn.Dropout(0.0)
        self.blocks = nn.ModuleList([Block(d, int(round(d * cfg["mlpRatio"]))) for _ in range(cfg["depth"])])
        self.norm = nn.LayerNorm(d, eps=1e-6)
        h, o = cfg["hiddenDim"], cfg["outputDim"]
        self.fc = nn.Sequential(collections.OrderedDict([
            ("fc1", nn.Linear(d, h)), ("bn1", nn.BatchNorm1d(h)), ("gelu1", nn.GELU()),
            ("fc2", nn.Linear(h, h)), ("bn2", nn.BatchNorm1d(h)), ("gelu2", nn.GELU()),
            ("fc3", nn.Linear(h, o)),
        ]))


class DDPLike(nn.Module):
    """state_dict keys as DistributedDataParallel's: 'module.' + the model's."""

    def __init__(self, m):
        super().__init__()
        self.module = m


def init_opt_groups(encoder, prototypes):
    """msn_train.init_opt's parameter groups, verbatim in structure."""
    return [
        {"params": (p for n, p in encoder.named_parameters()
                    if ("bias" not in n) and ("bn" not in n) and len(p.shape) != 1)},
        {"params": (p for n, p in encoder.named_parameters()
                    if ("bias" in n) or ("bn" in n) or (len(p.shape) == 1)),
         "WD_exclude": True, "weight_decay": 0},
        {"params": [prototypes], "lr": 1e-3, "LARS_exclude": True, "WD_exclude": True, "weight_decay": 0},
    ]


def to_torch_layout(name, arr, cfg):
    """msn-web layout -> torch layout, with numpy (independent of the exporter)."""
    if name == "patch_embed.proj.weight":
        p, c, d = cfg["patchSize"], cfg["inChannels"], cfg["embedDim"]
        return arr.reshape(p, p, c, d).transpose(3, 2, 0, 1)
    if name.endswith(".weight") and arr.ndim == 2:
        return arr.T
    return arr


def read_f32(path, shape):
    return np.fromfile(path, dtype="<f4").reshape(shape)


def same(t, arr, what):
    ref = torch.from_numpy(np.ascontiguousarray(arr))
    if t.dtype != torch.float32:
        fail(f"{what}: dtype {t.dtype}, expected float32")
    if tuple(t.shape) != tuple(ref.shape):
        fail(f"{what}: shape {tuple(t.shape)}, expected {tuple(ref.shape)}")
    if not torch.equal(t, ref):
        fail(f"{what}: values differ (max |diff| {float((t - ref).abs().max())})")


def main():
    job = json.load(open(sys.argv[1]))
    path = job["file"]
    exp = job.get("expected")

    # (1) safety before any torch.load
    allowed = set()
    for f in job["fixtures"]:
        allowed |= globals_and_ops(pickle_of(f))[0]
    data = pickle_of(path)
    globs, ops, proto = globals_and_ops(data)
    if proto != 2:
        fail(f"pickle protocol {proto}, expected 2")
    if not globs <= allowed:
        fail(f"the pickle names globals the official checkpoints do not use: {sorted(globs - allowed)}")
    if not ops <= DATA_OPS:
        fail(f"unexpected opcodes {sorted(ops - DATA_OPS)}")
    Restricted(data, allowed).load()
    ok(f"pickle protocol 2, globals {sorted(globs)} (official fixtures use {sorted(allowed)}), restricted unpickler loads it")

    # (2) weights_only
    major = int(torch.__version__.split(".")[0])
    try:
        torch.load(path, map_location="cpu", weights_only=True)
        wo = None
    except Exception as e:  # noqa: BLE001
        wo = str(e)
    if major >= 2:
        if wo is not None:
            fail(f"torch {torch.__version__}: weights_only=True refused the file: {wo[-300:]}")
        ok(f"torch {torch.__version__}: weights_only=True loads it")
    elif "BINFLOAT" not in ops:
        # No float in the file (a model-folder export): torch 1.13's weights_only unpickler must take it too.
        if wo is not None:
            fail(f"torch {torch.__version__}: weights_only=True refused a file without BINFLOAT: {wo[-300:]}")
        ok(f"torch {torch.__version__}: weights_only=True loads it (no BINFLOAT in this file)")
    else:
        if wo is None:
            ok(f"torch {torch.__version__}: weights_only=True loads it")
        else:
            if "Unsupported operand 71" not in wo:
                fail(f"torch {torch.__version__}: weights_only=True failed for another reason than BINFLOAT: {wo[-300:]}")
            try:
                torch.load(job["fixtures"][0], map_location="cpu", weights_only=True)
                fail("the official fixture loads with weights_only=True but the export does not")
            except Exception as e:  # noqa: BLE001
                if "Unsupported operand 71" not in str(e):
                    fail(f"the official fixture failed weights_only for another reason: {str(e)[-200:]}")
            ok(f"torch {torch.__version__}: weights_only=True refuses BINFLOAT (opcode 71) here, as for the official fixture")

    # (3) load
    ck = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(ck, dict):
        fail(f"root is {type(ck)}")
    ok(f"torch.load: keys {list(ck.keys())}")

    if "compare_to" in job:
        ref = torch.load(job["compare_to"], map_location="cpu", weights_only=False)
        compare_official(ck, ref)

    if exp is None:
        return
    cfg = exp["config"]
    if list(ck.keys()) != exp["keys"]:
        fail(f"top-level keys {list(ck.keys())}, expected {exp['keys']}")

    # (4) the official code path (DDP-wrapped when world_size > 1, plain on one process)
    prefix = "" if exp.get("plain_keys") else "module."
    nets = {}
    for net in ("encoder", "target_encoder"):
        sd = ck[net]
        if not isinstance(sd, collections.OrderedDict):
            fail(f"{net} is a {type(sd)}, expected an OrderedDict state dict")
        if prefix and not all(k.startswith(prefix) for k in sd):
            fail(f"{net}: keys without the DDP 'module.' prefix")
        if not prefix and any(k.startswith("module.") for k in sd):
            fail(f"{net}: 'module.' keys, expected plain ones")
        m = DDPLike(VisionTransformer(cfg)) if prefix else VisionTransformer(cfg)
        if list(m.state_dict().keys()) != list(sd.keys()):
            fail(f"{net}: key order differs from the official module's state_dict:\n{list(sd.keys())}\n{list(m.state_dict().keys())}")
        m.load_state_dict(sd, strict=True)
        nets[net] = m
    ok(f"encoder and target_encoder load strictly into the official module tree{' wrapped like DDP' if prefix else ''}, same key order")
    protos = ck["prototypes"]
    K, D = cfg["numPrototypes"], cfg["outputDim"]
    if tuple(protos.shape) != (K, D):
        fail(f"prototypes shape {tuple(protos.shape)}")

    if "opt" in exp:
        e = exp["opt"]
        prototypes = nn.Parameter(protos.clone())
        encoder = nets["encoder"]
        opt = torch.optim.AdamW(init_opt_groups(encoder, prototypes))
        opt.load_state_dict(ck["opt"])
        groups = opt.param_groups
        for i, g in enumerate(groups):
            if not math.isclose(g["lr"], e["lr"], rel_tol=0, abs_tol=0):
                fail(f"group {i} lr {g['lr']}, expected {e['lr']}")
        if groups[0]["weight_decay"] != e["weight_decay"] or groups[1]["weight_decay"] != 0 or groups[2]["weight_decay"] != 0:
            fail(f"weight decays {[g['weight_decay'] for g in groups]}, expected [{e['weight_decay']}, 0, 0]")
        if not (groups[1].get("WD_exclude") and groups[2].get("WD_exclude") and groups[2].get("LARS_exclude")):
            fail("WD_exclude / LARS_exclude flags of init_opt are missing")
        raw = ck["opt"]["param_groups"]
        ids = [i for g in raw for i in g["params"]]
        if ids != list(range(len(ids))):
            fail(f"param ids {ids} are not 0..n-1 through the groups")
        names = [n for n, p in encoder.named_parameters() if ("bias" not in n) and ("bn" not in n) and len(p.shape) != 1]
        names += [n for n, p in encoder.named_parameters() if ("bias" in n) or ("bn" in n) or (len(p.shape) == 1)]
        names = [n[len(prefix):] for n in names] + ["prototypes"]
        params = [p for g in groups for p in g["params"]]
        if e["step"] > 0:
            for n, p in zip(names, params):
                st = opt.state[p]
                if float(st["step"]) != e["step"]:
                    fail(f"{n}: step {st['step']}, expected {e['step']}")
                if st["exp_avg"].shape != p.shape or st["exp_avg_sq"].shape != p.shape:
                    fail(f"{n}: moment shapes {tuple(st['exp_avg'].shape)} / {tuple(st['exp_avg_sq'].shape)} differ from the parameter's {tuple(p.shape)}")
        elif len(opt.state) != 0:
            fail("step 0 but the optimizer has state")
        for p in params:
            p.grad = torch.ones_like(p)
        opt.step()
        after = float(opt.state[params[0]]["step"])
        if after != e["step"] + 1:
            fail(f"after one more step the count is {after}, expected {e['step'] + 1}")
        ok(f"AdamW with init_opt's groups loads opt (step {e['step']}, lr {e['lr']}, wd {e['weight_decay']}) and steps to {after:g}")

    # (5) values
    adir = exp["arrays_dir"]
    for net, key in (("encoder", "encoder"), ("target", "target_encoder")):
        sd = ck[key]
        for name, shape in exp["arrays"][net]:
            arr = to_torch_layout(name, read_f32(os.path.join(adir, f"{net}~{name}.f32"), shape), cfg)
            same(sd[prefix + name], arr, f"{key}.{prefix}{name}")
        for bn in ("fc.bn1", "fc.bn2"):
            t = sd[f"{prefix}{bn}.num_batches_tracked"]
            if t.dtype != torch.int64 or t.shape != () or int(t) != exp["num_batches_tracked"][net]:
                fail(f"{key}.{bn}.num_batches_tracked is {t!r}")
    same(protos, read_f32(os.path.join(adir, "prototypes.f32"), [K, D]), "prototypes")
    ok("encoder, target_encoder and prototypes equal the msn-web arrays (torch layout), bit for bit")
    if "opt" in exp and exp["opt"]["step"] > 0:
        state = ck["opt"]["state"]
        for i, (name, shape) in enumerate(exp["opt"]["moments"]):
            for which, key in (("m", "exp_avg"), ("v", "exp_avg_sq")):
                arr = read_f32(os.path.join(adir, f"adam_{which}~{name}.f32"), shape)
                same(state[i][key], arr if name == "prototypes" else to_torch_layout(name, arr, cfg), f"opt.state[{i}].{key} ({name})")
            if state[i]["step"].dtype != torch.float32 or float(state[i]["step"]) != exp["opt"]["step"]:
                fail(f"opt.state[{i}].step is {state[i]['step']!r}")
        ok(f"AdamW moments of all {len(exp['opt']['moments'])} parameters equal msn-web's (torch layout)")
    for k, v in exp.get("scalars", {}).items():
        got = ck[k]
        if v == "nan":
            if not (isinstance(got, float) and math.isnan(got)):
                fail(f"{k} = {got!r}, expected nan")
        elif type(got) is not type(v) or got != v:
            fail(f"{k} = {got!r} ({type(got).__name__}), expected {v!r} ({type(v).__name__})")
    if exp.get("scalars"):
        ok(f"scalars {dict((k, ck[k]) for k in exp['scalars'])}")
    print("ALL OK", flush=True)


def compare_official(ck, ref):
    """The export equals an official checkpoint: same keys, order, values and optimizer state."""
    if list(ck.keys()) != list(ref.keys()):
        fail(f"keys {list(ck.keys())} vs official {list(ref.keys())}")
    for k in ref:
        a, b = ck[k], ref[k]
        if k in ("encoder", "target_encoder"):
            strip = lambda sd: [(kk[len("module."):] if kk.startswith("module.") else kk) for kk in sd]
            if strip(a) != strip(b):
                fail(f"{k}: key order differs from the official file")
            for (ka, ta), (kb, tb) in zip(a.items(), b.items()):
                if ka.endswith("num_batches_tracked"):
                    if ta.dtype != tb.dtype or ta.shape != tb.shape:
                        fail(f"{k}.{ka}: {ta!r} vs {tb!r}")
                    continue
                if not torch.equal(ta, tb):
                    fail(f"{k}.{ka} differs from the official file")
        elif k == "opt":
            if a["param_groups"] != b["param_groups"]:
                fail(f"param_groups differ:\n{a['param_groups']}\n{b['param_groups']}")
            for g1, g2 in zip(a["param_groups"], b["param_groups"]):
                if list(g1) != list(g2):
                    fail(f"param group key order {list(g1)} vs official {list(g2)}")
            if list(a["state"]) != list(b["state"]):
                fail("opt.state ids differ")
            for i in b["state"]:
                for kk in b["state"][i]:
                    if not torch.equal(a["state"][i][kk], b["state"][i][kk]) or a["state"][i][kk].dtype != b["state"][i][kk].dtype:
                        fail(f"opt.state[{i}].{kk} differs")
        elif torch.is_tensor(b):
            if not torch.equal(a, b):
                fail(f"{k} differs")
        elif type(a) is not type(b) or a != b:
            fail(f"{k}: {a!r} vs official {b!r}")
    ok("equals the official checkpoint: keys, order, tensors, optimizer state, scalars and their Python types")


if __name__ == "__main__":
    main()
