"""The fuzzer: valid calls of each op corrupted one or two ways at a time, each run in a worker
process with guard regions around every tensor argument, and classified.

    python -m harness fuzz --backend ours --calls 3000 --seed 0
    python -m harness fuzz --backend ours --op causal_conv1d_update --replay '<call JSON>'

A call is (op, base case, GEMM path, corruption names, seed). Base cases are the registry's pinned
cases, the base cases of the error catalogue and a few small cases drawn from the op's strategy
(seeded). A corruption is either an entry of the error catalogue (harness/errors.py) applied to
any base case (its spoil edits the built kwargs; where it no longer applies it is skipped), or a
generic mutator from `MUTATORS` applied to one argument of the kind it targets (offsets, slot
indices, tensors, optionals, scalars, flags). The same seed gives the same calls, and each row's
repro line replays its call from its JSON alone.

In the worker, the float64 reference decides whether the corrupted call is still valid, then the
backend is called with every tensor argument copied into the middle of a larger buffer whose
surrounding bytes (and the gaps inside a strided view) hold GUARD_BYTE; a guard byte changed after
the call is an out-of-bounds write. Each call gets exactly one class of CLASSES.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch

import reference as R
from harness import backends, runner
from harness.registry import REGISTRY

CLASSES = ("clean_error", "unnamed_error", "accepted_invalid", "wrong_result", "ok_valid", "crash",
           "hang", "oob_write")
FAILING = ("crash", "hang", "oob_write", "accepted_invalid", "wrong_result")

OFFSETS = ("cu_seqlens", "query_start_loc")
SLOTS = ("state_indices", "initial_state_indices", "cache_indices", "conv_state_indices",
         "spec_state_indices", "num_accepted_tokens")
HUGE = 2**31 + 1          # a dim past int32, made by expand: nothing of that size is allocated
HUGE_NUMEL = 2**28        # a tensor with more logical elements is one of those
MAX_BASE_ELEMENTS = 2**20  # base cases larger than this are left out (each call runs the oracle)
MAX_TOKENS = 256          # ... and prefills with more tokens (the oracle steps token by token)
GUARD_BYTE = 0xA7         # fp32 -4.6e-15, bf16 -4.6e-15, int32 -1482184793: not 0, -1, NaN or inf
CALL_TIMEOUT_S = 60.0
# torch's own rejections, raised by the dispatcher or argument parser before any kernel code runs
BEFORE_KERNEL = (r"tensor does not have a device|There were no tensor arguments|Expected a value of "
                 r"type|expected .* but (found|got) .*(argument|type)|is not on the expected device")


class NotApplicable(Exception):
    """This corruption does not apply to this call (no such argument, nothing to change)."""


# --- generic mutators: (value, rng) -> the corrupted value -------------------------------------

def _tensor(v):
    if not isinstance(v, torch.Tensor) or v.device.type != "cpu" or v.numel() > HUGE_NUMEL:
        raise NotApplicable
    return v


def _dim(t, rng, min_size=0):
    dims = [d for d in range(t.dim()) if t.shape[d] >= min_size]
    if not dims:
        raise NotApplicable
    return rng.choice(dims)


def _other_float(t):
    return t.to(torch.float32 if t.dtype in (torch.bfloat16, torch.float16) else
                torch.bfloat16 if t.is_floating_point() else torch.int64 if t.dtype == torch.int32
                else torch.int32)


def _plus_one(t, d):
    extra = t.narrow(d, 0, 1) if t.shape[d] else torch.zeros_like(t.narrow(d, 0, 0)).expand(
        *[1 if i == d else n for i, n in enumerate(t.shape)])
    return torch.cat([t, extra], d)


def _noncontiguous(t, rng):
    """The same values through a view with every dim's stride doubled (a padded buffer)."""
    if t.dim() == 0 or t.numel() == 0:
        raise NotApplicable
    big = torch.zeros(*t.shape[:-1], 2 * t.shape[-1], dtype=t.dtype)
    big[..., ::2] = t
    return big[..., ::2]


def _transposed(t, rng):
    if t.dim() < 2:
        raise NotApplicable
    a, b = rng.sample(range(t.dim()), 2)
    return t.transpose(a, b)


def _expanded(t, rng):
    """Stride 0 in one dim (values repeated from its first index)."""
    d = _dim(t, rng, 2)
    return t.narrow(d, 0, 1).expand(t.shape)


def _overlapping(t, rng):
    """The same shape over fewer elements: one stride shrunk so that elements overlap."""
    t = t.contiguous()
    dims = [d for d in range(t.dim()) if t.shape[d] >= 2 and t.stride(d) >= 2]
    if not dims:
        raise NotApplicable
    d = rng.choice(dims)
    stride = list(t.stride())
    stride[d] //= 2
    return t.as_strided(t.shape, stride, t.storage_offset())


def _huge(t, rng):
    """One dim expanded to HUGE from its first index. Such a call is fuzzed only where the same
    dim one longer already breaks the call (`_fuzz_twin`, what the reference judges instead):
    a valid call of that size would need huge outputs, not a check."""
    d = _dim(t, rng, 1)
    shape = list(t.shape)
    shape[d] = HUGE
    huge = t.narrow(d, 0, 1).expand(shape)
    huge._fuzz_twin = _plus_one(t, d)
    return huge


def _empty(t, rng):
    return t.narrow(_dim(t, rng, 1), 0, 0)


def _offsets(fn):
    def mutate(t, rng):
        c = _tensor(t).tolist()
        if not isinstance(c, list) or not c:
            raise NotApplicable
        return torch.tensor(fn(c, rng), dtype=t.dtype)
    return mutate


def _decreasing(c, rng):
    pairs = [i for i in range(len(c) - 1) if c[i] < c[i + 1]]
    if not pairs:
        raise NotApplicable
    i = rng.choice(pairs)
    return c[:i] + [c[i + 1], c[i]] + c[i + 2:]


def _drop_one(c, rng):
    if len(c) < 2:
        raise NotApplicable
    i = rng.randrange(len(c))
    return c[:i] + c[i + 1:]


def _slot_value(value):
    def mutate(t, rng):
        t = _tensor(t).clone()
        if t.numel() == 0:
            raise NotApplicable
        t.view(-1)[rng.randrange(t.numel())] = value
        return t
    return mutate


def _duplicated(t, rng):
    t = _tensor(t).clone()
    flat = t.view(-1)
    live = [i for i, s in enumerate(flat.tolist()) if s >= 0]
    if len(live) < 2:
        raise NotApplicable
    a, b = rng.sample(live, 2)
    if flat[a] == flat[b]:
        raise NotApplicable
    flat[b] = flat[a]
    return t


def _longer(t, rng):
    t = _tensor(t)
    if t.dim() == 0:
        raise NotApplicable
    used = set(t.view(-1).tolist())
    fresh = next(i for i in range(len(used) + 1) if i not in used)
    row = torch.full((1, *t.shape[1:]), -1 if t.dim() > 1 else fresh, dtype=t.dtype)
    row.view(-1)[0] = fresh
    return torch.cat([t, row])


def _shorter(t, rng):
    t = _tensor(t)
    if t.dim() == 0 or t.shape[0] == 0:
        raise NotApplicable
    return t[:-1]


def _scalar(fn, floats_only=False):
    def mutate(v, rng):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (
                floats_only and not isinstance(v, float)):
            raise NotApplicable
        new = fn(v)
        if new == v:
            raise NotApplicable
        return new
    return mutate


def _flip(v, rng):
    if not isinstance(v, bool):
        raise NotApplicable
    return not v


def _none(v, rng):
    if v is None:
        raise NotApplicable
    return None


def _t(fn):
    """A mutator of a CPU tensor argument."""
    return lambda v, rng: fn(_tensor(v), rng)


@dataclass(frozen=True)
class Mutator:
    name: str
    kind: str                       # the arguments it applies to: tensor, offsets, slots, value
    apply: Callable                 # (the argument's value, rng) -> the corrupted value


M = Mutator
MUTATORS = (
    # offsets (cu_seqlens, query_start_loc)
    M("not_from_0", "offsets", _offsets(lambda c, rng: [c[0] + 1] + c[1:])),
    M("decreasing", "offsets", _offsets(_decreasing)),
    M("ends_before_T", "offsets", _offsets(lambda c, rng: c[:-1] + [c[-1] - 1])),
    M("ends_after_T", "offsets", _offsets(lambda c, rng: c[:-1] + [c[-1] + 1])),
    M("one_entry_missing", "offsets", _offsets(_drop_one)),
    M("trailing_entry", "offsets", _offsets(lambda c, rng: c + [c[-1]])),
    M("int64", "offsets", lambda t, rng: _tensor(t).long()),
    M("huge_offset", "offsets", _offsets(lambda c, rng: c[:-1] + [2**31 - 1])),
    M("huge_middle_offset", "offsets",
      _offsets(lambda c, rng: c[:1] + [2**30] + c[2:] if len(c) > 2 else c + [2**30])),
    # slot indices and counts
    M("index_2^28", "slots", _slot_value(2**28)),
    M("index_-2^31", "slots", _slot_value(-2**31)),
    M("index_-2", "slots", _slot_value(-2)),
    M("int64", "slots", lambda t, rng: _tensor(t).long()),
    M("duplicated", "slots", _duplicated),
    M("too_short", "slots", _shorter),
    M("too_long", "slots", _longer),
    # any tensor
    M("unsqueeze", "tensor", _t(lambda t, rng: t.unsqueeze(rng.randint(0, t.dim())))),
    M("rank_minus_1", "tensor", _t(lambda t, rng: t.select(_dim(t, rng, 1), 0))),
    M("float64", "tensor", _t(lambda t, rng: t.double())),
    M("int32", "tensor", _t(lambda t, rng: t.int())),
    M("bool", "tensor", _t(lambda t, rng: t.bool())),
    M("other_dtype", "tensor", _t(lambda t, rng: _other_float(t))),
    M("dim_minus_1", "tensor", _t(lambda t, rng: (lambda d: t.narrow(d, 0, t.shape[d] - 1))(
        _dim(t, rng, 1)))),
    M("dim_plus_1", "tensor", _t(lambda t, rng: _plus_one(t, _dim(t, rng)))),
    M("transposed", "tensor", _t(_transposed)),
    M("noncontiguous", "tensor", _t(_noncontiguous)),
    M("expanded", "tensor", _t(_expanded)),
    M("meta", "tensor", _t(lambda t, rng: t.to("meta"))),
    M("empty_dim", "tensor", _t(_empty)),
    M("huge_dim", "tensor", _t(_huge)),
    M("overlapping", "tensor", _t(_overlapping)),
    M("none", "tensor", _none),
    # scalars and flags
    M("zero", "scalar", _scalar(lambda v: type(v)(0))),
    M("negative", "scalar", _scalar(lambda v: -abs(v) if v else -1)),
    M("int_min", "scalar", _scalar(lambda v: -2**31 if isinstance(v, int) else v)),
    M("nan", "scalar", _scalar(lambda v: float("nan"), floats_only=True)),
    M("inf", "scalar", _scalar(lambda v: float("inf"), floats_only=True)),
    M("flipped", "bool", _flip),
)
BY_NAME = {m.name + "/" + m.kind: m for m in MUTATORS}


def _kinds(arg: str, value) -> tuple[str, ...]:
    if isinstance(value, bool):
        return ("bool",)
    if isinstance(value, (int, float)):
        return ("scalar",)
    if isinstance(value, torch.Tensor):
        return ("tensor",) + (("offsets",) if arg in OFFSETS else ("slots",) if arg in SLOTS else ())
    return ()


# --- calls: built, corrupted, replayed ---------------------------------------------------------

@dataclass
class Built:
    kwargs: dict        # the corrupted call
    args: list[str]     # the arguments the corruptions changed (or aimed at)
    ref_kwargs: dict    # what the reference judges: the call, huge dims replaced by their twins


def corruption_names(spec, kwargs: dict) -> list[str]:
    """Every corruption of an op: its error catalogue's entries ("error:<name>"), then each
    generic mutator on each argument of its kind ("<mutator>/<kind>@<arg>")."""
    names = [f"error:{e.name}" for e in spec.errors]
    for arg, value in kwargs.items():
        kinds = _kinds(arg, value)
        names += [f"{m.name}/{m.kind}@{arg}" for m in MUTATORS if m.kind in kinds]
    return names


def _apply(spec, kw: dict, name: str, rng: random.Random) -> list[str]:
    if name.startswith("error:"):
        err = next((e for e in spec.errors if e.name == name[6:]), None)
        if err is None:
            raise ValueError(f"{spec.name} has no error input {name[6:]!r}")
        before = dict(kw)
        err.spoil(kw)
        changed = [a for a in kw if a not in before or kw[a] is not before[a]]
        return sorted(set(changed) | {err.arg})
    mutator, arg = name.split("@")
    if arg not in kw:
        raise NotApplicable
    kw[arg] = BY_NAME[mutator].apply(kw[arg], rng)
    return [arg]


def build_call(op: str, call: dict) -> Built:
    """The corrupted call of a call description {"base", "variant", "corruptions", "seed"};
    NotApplicable if a corruption does not apply to it."""
    spec = REGISTRY[op]
    kw = spec.build(spec.complete(call["base"]))
    warnings.filterwarnings("ignore", "Casting complex values")   # int32 of a complex tensor
    args: list[str] = []
    for j, name in enumerate(call["corruptions"]):
        if any(isinstance(v, torch.Tensor) and v.numel() > HUGE_NUMEL for v in kw.values()):
            raise NotApplicable("a huge dim comes last: a later corruption could materialize it")
        try:
            args += _apply(spec, kw, name, random.Random(f"{call['seed']}:{j}"))
        except NotApplicable:
            raise
        except Exception as e:  # a catalogue spoil written for another base, or a mutator misfit
            raise NotApplicable(str(e)) from None
    huge = [k for k, v in kw.items() if isinstance(v, torch.Tensor) and v.numel() > HUGE_NUMEL
            and not hasattr(v, "_fuzz_twin")]
    own = [e.case for e in spec.errors if f"error:{e.name}" in call["corruptions"]]
    if huge and (len(call["corruptions"]) > 1 or own != [call["base"]]):
        # a catalogue entry of huge sizes is checked (by the reference too) on its own base only
        raise NotApplicable("a catalogue entry of huge sizes, away from its own base case")
    tensors = [v for v in kw.values() if isinstance(v, torch.Tensor)]
    if tensors and all(t.device.type == "meta" for t in tensors):
        raise NotApplicable("every argument on meta: a tracing call (the fake implementation's)")
    ref_kw = {k: getattr(v, "_fuzz_twin", v) for k, v in kw.items()}
    if any(ref_kw[k] is not kw[k] for k in kw) and reference_verdict(spec, ref_kw)[0] is not None:
        raise NotApplicable("a huge dim on a call that would be valid")
    return Built(kw, sorted(set(args)), ref_kw)


def reference_verdict(spec, kw: dict) -> tuple[dict | None, str]:
    """(the oracle's results, "") if the float64 reference accepts the call, else (None, why)."""
    for k, v in kw.items():
        if isinstance(v, torch.Tensor) and v.device.type != "cpu":
            return None, f"{k}: a {v.device.type} tensor, not a CPU tensor"
    try:
        return spec.run_reference(kw, R.ORACLE), ""
    except Exception as e:  # any rejection counts: the call is invalid
        return None, runner._first_line(e)


# --- guard regions -----------------------------------------------------------------------------

@dataclass
class Guarded:
    buffer: torch.Tensor    # the whole allocation, viewed as bytes
    covered: torch.Tensor   # per byte: part of the view (True) or guard (False)


def _span(t: torch.Tensor) -> int:
    return 0 if t.numel() == 0 else 1 + sum((n - 1) * s for n, s in zip(t.shape, t.stride()))


def guard(t: torch.Tensor) -> tuple[torch.Tensor, Guarded]:
    """A copy of t (same shape, strides and values) in the middle of a larger buffer; every byte
    of the buffer outside the view's elements holds GUARD_BYTE."""
    es = t.element_size()
    span = _span(t)
    pad = max(4096 // es, 2 * max([abs(s) for s in t.stride()] + [0]))
    pad = min(-(-pad * es // 64) * 64 // es, 2**22)          # whole cache lines, at most 4M elements
    buf = torch.empty(pad + span + pad, dtype=t.dtype)
    raw = buf.view(torch.uint8) if es == 1 else buf.view(torch.uint8).view(-1)
    raw.fill_(GUARD_BYTE)
    covered = torch.zeros(buf.numel(), dtype=torch.bool)
    if span:
        if t.numel() <= 2**22 and 0 not in t.stride():
            offsets = torch.zeros((), dtype=torch.int64)
            for n, s in zip(t.shape, t.stride()):
                offsets = (offsets[..., None] + torch.arange(n) * s)
            covered[pad + offsets.reshape(-1)] = True
            buf.as_strided(t.shape, t.stride(), pad).copy_(t)
        else:   # overlapping or huge: copy the storage span as it is, guard only around it
            covered[pad:pad + span] = True
            buf[pad:pad + span].copy_(t.as_strided((span,), (1,), t.storage_offset()))
    view = buf.as_strided(t.shape, t.stride(), pad)
    return view, Guarded(raw, covered.repeat_interleave(es))


def guard_damage(g: Guarded) -> int:
    """How many guard bytes changed."""
    return int((g.buffer[~g.covered] != GUARD_BYTE).sum())


# --- one call, in the worker -------------------------------------------------------------------

def _judge(spec, backend, variant, kw: dict, returned: dict, oracle: dict, ref_kw: dict,
           case: dict) -> list[str]:
    """The comparator of harness/runner.py on one valid call: each result against the oracle and
    the same-precision baseline (metrics.measure, policy.judge; elementwise where the op declares
    its accumulations)."""
    baseline = spec.run_reference(ref_kw, R.FP32, backend.baseline(spec.name, variant))
    if "weight" in ref_kw:          # the conv width as called, not as the base case had it
        case = dict(case, W=ref_kw["weight"].shape[-1])
    accumulation = spec.accumulation(case, ref_kw) if spec.accumulation else {}
    got = {name: kw[name] if name in kw else returned.get(name) for name in spec.results}
    problems: list[str] = []
    runner.judge(spec, got, oracle, baseline, accumulation, {}, case, problems)
    return problems


def _bytes(t: torch.Tensor) -> torch.Tensor:
    return torch.empty(t.numel(), dtype=t.dtype).copy_(t.reshape(-1)).view(torch.uint8)


def _same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    return torch.equal(_bytes(a), _bytes(b))


def run_call(op: str, backend: backends.Backend, variant: str, call: dict) -> dict:
    """One fuzz call's row: the reference's verdict, the backend called on guarded copies, the
    guards checked, the class."""
    spec = REGISTRY[op]
    built = build_call(op, call)
    oracle, ref_message = reference_verdict(spec, built.ref_kwargs)
    kw, guards, inputs = {}, [], {}
    for k, v in built.kwargs.items():
        if isinstance(v, torch.Tensor) and v.device.type == "cpu":
            kw[k], g = guard(v)
            guards.append((k, g))
            if k not in spec.results and v.numel() <= HUGE_NUMEL:
                inputs[k] = v
        else:
            kw[k] = v
    raised = None
    try:
        returned = backend.call(op, kw, variant)
    except Exception as e:
        raised = e
    damaged = [f"{k} ({n} bytes)" for k, g in guards if (n := guard_damage(g))]
    row = dict(arguments=",".join(built.args), reference=ref_message or "accepts")
    if damaged:
        return dict(row, cls="oob_write", message="guard bytes changed around " + ", ".join(damaged)
                    + (f"; then raised {runner._first_line(raised)}" if raised else ""))
    if raised is not None:
        blamed = re.match(r"\w+: (\w+):", ref_message)      # "RuntimeError: <arg>: ..."
        named = [a for a in built.args + ([blamed.group(1)] if blamed else [])
                 if runner.names(str(raised), a)]
        message = runner._first_line(raised)
        other = re.match(r"\w+: (\w+):", message)
        note = ("" if named else "rejected by torch before the kernel" if re.search(BEFORE_KERNEL, message)
                else f"names another argument: {other.group(1)}" if other and other.group(1) in kw
                else "")
        return dict(row, cls="clean_error" if named else "unnamed_error", message=message, note=note)
    if oracle is None:
        meta = [n for n, t in returned.items() if isinstance(t, torch.Tensor) and t.is_meta]
        contract = re.match(r"RuntimeError: (\w+):", ref_message)
        return dict(row, cls="accepted_invalid", message="returned" + (
            f" meta tensors ({', '.join(meta)}): the op's fake implementation ran" if meta else "")
            + ("" if contract and contract.group(1) in built.kwargs else
               "; the reference failed without a contract check: it may be the reference's gap"))
    problems = [f"{k}: an input was written" for k, v in inputs.items() if not _same_bits(kw[k], v)]
    try:
        problems += _judge(spec, backend, variant, kw, returned, oracle, built.ref_kwargs,
                           spec.complete(call["base"]))
    except Exception as e:
        problems.append(f"results not comparable: {runner._first_line(e)}")
    return dict(row, cls="wrong_result" if problems else "ok_valid", message="; ".join(problems))


# --- generating calls --------------------------------------------------------------------------

def _drawn(op: str, seed: int, n: int) -> list[dict]:
    """n case descriptions drawn from the op's strategy with this seed (Hypothesis, no database)."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hseed
    found: list[dict] = []

    @hseed(seed)
    @settings(max_examples=n, phases=[Phase.generate], database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(REGISTRY[op].cases)
    def collect(case):
        found.append(case)

    collect()
    return found


def _small(op: str, case: dict) -> bool:
    kw = REGISTRY[op].build(REGISTRY[op].complete(case))
    tensors = [v for v in kw.values() if isinstance(v, torch.Tensor)]
    tokens = kw["query"].shape[1] if "query" in kw else 0
    return sum(t.numel() for t in tensors) <= MAX_BASE_ELEMENTS and tokens <= MAX_TOKENS


def base_cases(op: str, seed: int, drawn: int = 6) -> list[dict]:
    """The op's valid calls to corrupt: pinned cases and the catalogue's base cases, then up to
    `drawn` cases drawn with this seed; small ones only, without repeats."""
    spec = REGISTRY[op]
    fixed = [c for _, c in spec.examples] + [e.case for e in spec.errors]
    unique = {runner.case_json(c): c for c in fixed if _small(op, c)}
    wanted = len(unique) + drawn
    for c in _drawn(op, seed, 4 * drawn):
        if len(unique) < wanted and runner.case_json(c) not in unique and _small(op, c):
            unique[runner.case_json(c)] = c
    return list(unique.values())


def generate(backend: backends.Backend, ops: list[str], calls: int, seed: int) -> list[dict]:
    """`calls` call descriptions, round-robin over the ops the backend implements; the same
    arguments give the same list. Each: op, variant, base, corruptions (1 or 2), seed."""
    ops = [op for op in ops if op in backend.OPS]
    bases = {op: base_cases(op, seed) for op in ops}
    fits: dict[tuple, list[dict]] = {}       # (op, variant) -> the bases the backend supports
    names: dict[str, list[str]] = {}         # base -> its corruptions
    out: list[dict] = []
    i = 0
    while len(out) < calls and ops:
        op = ops[i % len(ops)]
        rng = random.Random(f"{seed}:{i}")
        i += 1
        spec = REGISTRY[op]
        variant = rng.choice(backend.variants(op, spec.gemm))
        if (op, variant) not in fits:
            fits[op, variant] = [c for c in bases[op]
                                 if not backend.unsupported(op, spec.complete(c), variant)]
        if not fits[op, variant]:
            continue
        for _ in range(50):
            base = rng.choice(fits[op, variant])
            key = runner.case_json(base)
            if key not in names:
                names[key] = corruption_names(spec, spec.build(spec.complete(base)))
            catalogue = [n for n in names[key] if n.startswith("error:")]
            generic = [n for n in names[key] if not n.startswith("error:")]
            picks = [rng.choice(catalogue if catalogue and rng.random() < 0.3 else generic)
                     for _ in range(1 if rng.random() < 0.6 else 2)]
            call = dict(op=op, variant=variant, base=base, corruptions=picks,
                        seed=rng.randrange(2**31))
            try:
                build_call(op, call)
            except NotApplicable:
                continue
            out.append(call)
            break
    return out


# --- running and reporting ---------------------------------------------------------------------

def call_json(call: dict) -> str:
    return json.dumps({k: call[k] for k in ("base", "variant", "corruptions", "seed")},
                      sort_keys=True, separators=(",", ":"))


def repro(backend: str, call: dict) -> str:
    return (f"python -m harness fuzz --backend {backend} --op {call['op']} "
            f"--replay '{call_json(call)}'")


def run_calls(calls: list[dict], backend: str, timeout: float = CALL_TIMEOUT_S,
              progress: Callable[[int, dict], None] | None = None, worker=None) -> list[dict]:
    """Each call in an isolated worker (harness/isolation.py; `worker`: one to reuse, left
    open); one row each."""
    from harness.isolation import Isolated
    own = worker is None
    worker = Isolated(timeout=timeout) if own else worker
    rows = []
    try:
        for n, call in enumerate(calls):
            request = ("fuzz", call["op"], backend, call["variant"], call, None)
            got = worker.run(request)
            if "cls" not in got and got.get("status") != "crash":
                worker.close()          # the harness failed in the worker: once more in a new one
                got = worker.run(request)
                if "cls" not in got and got.get("status") != "crash":
                    raise RuntimeError(f"the fuzzer failed on {repro(backend, call)}: "
                                       f"{got.get('reason')}")
            if got.get("status") == "crash":
                cls = "hang" if "no answer" in got["reason"] else "crash"
                got = dict(cls=cls, message=got["reason"], arguments="", reference="", note="")
            if got["cls"] in ("oob_write", "accepted_invalid"):
                worker.close()          # its memory may be damaged: the next call gets a new one
            row = dict(op=call["op"], backend=backend, gemm_path=call["variant"],
                       corruptions=" + ".join(call["corruptions"]), arguments=got["arguments"],
                       **{"class": got["cls"]}, message=got["message"], note=got.get("note", ""),
                       reference=got["reference"], repro=repro(backend, call))
            rows.append(row)
            if progress:
                progress(n, row)
    finally:
        if own:
            worker.close()
    return rows


def summary(rows: list[dict]) -> str:
    import pandas as pd
    df = pd.DataFrame(rows)
    table = pd.crosstab(df["op"], df["class"]).reindex(columns=list(CLASSES), fill_value=0)
    table.loc["all"] = table.sum()
    return table.to_string()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m harness fuzz", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backend", default="ours")
    p.add_argument("--calls", type=int, default=3000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--op", nargs="+", default=None, choices=sorted(REGISTRY))
    p.add_argument("--out", help="the CSV report (default reports/fuzz-<run-id>.csv)")
    p.add_argument("--timeout", type=float, default=CALL_TIMEOUT_S,
                   help="seconds a call may take before it is a hang")
    p.add_argument("--replay", help="one call's JSON (from a repro line): run it alone")
    args = p.parse_args(argv)
    backend = backends.make(args.backend)
    why = backend.available()
    if why:
        print(f"{args.backend} is not available: {why}")
        return 2
    ops = args.op or sorted(REGISTRY)
    if args.replay:
        if len(ops) != 1:
            raise SystemExit("--replay needs one --op")
        calls = [dict(json.loads(args.replay), op=ops[0])]
    else:
        start = time.perf_counter()
        calls = generate(backend, ops, args.calls, args.seed)
        print(f"{len(calls)} calls generated in {time.perf_counter() - start:.0f} s "
              f"(seed {args.seed}, backend {args.backend})")
    start = time.perf_counter()

    def progress(n, row):
        if row["class"] in FAILING or args.replay or (n + 1) % 250 == 0:
            print(f"[{n + 1}/{len(calls)}] {row['op']} {row['corruptions']}: {row['class']} "
                  f"{row['message'][:160]}", flush=True)

    rows = run_calls(calls, args.backend, args.timeout, progress)
    elapsed = time.perf_counter() - start
    if args.replay:
        for k, v in rows[0].items():
            print(f"{k:>12}  {v}")
        return 1 if rows[0]["class"] in FAILING else 0
    import os

    import pandas as pd
    run_id = os.environ.get("HARNESS_RUN_ID") or time.strftime("%Y%m%d-%H%M%S")
    out = args.out or f"reports/fuzz-{run_id}.csv"
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    pd.DataFrame(rows).to_csv(out, index=False)
    print(summary(rows))
    unnamed = [r for r in rows if r["class"] == "unnamed_error"]
    if unnamed:
        print(f"\nunnamed errors ({len(unnamed)}; acceptable only where torch's dispatcher rejects "
              f"the call before kernel code runs), distinct messages:")
        seen: dict[tuple, dict] = {}
        for r in unnamed:
            seen.setdefault((r["op"], r["note"], re.sub(r"\d+", "#", r["message"])), r)
        for (op, note, _), r in sorted(seen.items()):
            print(f"  {op}: {r['corruptions']}: {r['message'][:200]}" + (f"  [{note}]" if note else "")
                  + f"\n    {r['repro']}")
    bad = [r for r in rows if r["class"] in FAILING]
    for r in bad:
        print(f"{r['class']}: {r['op']} {r['corruptions']}: {r['message'][:200]}\n  {r['repro']}")
    print(f"\n{len(rows)} calls in {elapsed:.0f} s; {len(bad)} crash, hang, oob_write, "
          f"accepted_invalid or wrong_result; report: {out}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
