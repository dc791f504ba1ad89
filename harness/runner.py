"""One case, one backend: run it and the references, measure, judge, check invariants; one row.

Rows are flat dicts (the CSV's columns); see harness/report.py for the column order. Everything in
a row but `elapsed_s` is a function of (op, backend, variant, case), so the same cases give the
same report.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import time

import torch

import reference as R
from harness import backends, metrics, policy, repeat
from harness.invariants import Snapshot
from harness.registry import REGISTRY, ErrorInput, OpSpec

def case_json(case: dict) -> str:
    return json.dumps(case, sort_keys=True, separators=(",", ":"))


ID_ALIASES = {"slot_gap": "gap", "softplus_beta": "sb", "softplus_threshold": "thr"}


def case_id(spec: OpSpec, case: dict) -> str:
    """Readable and unique: the main axes, then a hash of the whole description."""
    def fmt(k, v):
        if isinstance(v, bool):
            return k if v else f"no_{k}"
        if isinstance(v, list):
            return f"{k}[{','.join(map(str, v))}]"
        if isinstance(v, str):
            return f"state_{v}" if k == "state_dtype" else v
        return f"{ID_ALIASES.get(k, k)}{v:g}"
    readable = "-".join(fmt(k, case[k]) for k in spec.id_keys if case.get(k) is not None)
    return f"{readable}-{hashlib.sha1(case_json(case).encode()).hexdigest()[:8]}"


def repro(op: str, backend: str, variant: str, case: dict | str, kind: str = "case",
          threads: int | None = None) -> str:
    """The one-line command that replays a row in-process (case: its JSON; error: its name), at
    the row's thread count."""
    path = f" --gemm-path {variant}" if variant else ""
    what = f"--case '{case_json(case)}'" if kind != "error" else f"--error '{case}'"
    kind_opt = f" --kind {kind}" if kind not in ("case", "error") else ""
    threads_opt = f" --threads {threads}" if threads else ""
    return f"python -m harness repro {op} --backend {backend}{path}{threads_opt}{kind_opt} {what}"


def make_row(spec: OpSpec, backend: str, variant: str, case: dict, kind: str, **fields) -> dict:
    """A row's identifying columns, then `fields`. kind: "case" (a drawn or pinned case), "schema"
    (torch.library.opcheck on a case) or "error" (an error input, identified by its name)."""
    ident = fields.pop("error_name") if kind == "error" else case_id(spec, case)
    fields.setdefault("threads", torch.get_num_threads())
    return dict(op=spec.name, backend=backend, gemm_path=variant, kind=kind, case_id=ident,
                **fields, case=case_json(case), seed=case.get("seed"),
                repro=repro(spec.name, backend, variant, ident if kind == "error" else case, kind,
                            fields["threads"]))


def _first_line(e: BaseException) -> str:
    return f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"


def run_case(op: str, backend: backends.Backend, variant: str, case: dict) -> dict:
    """One case's row. The backend runs at the caller's thread count (recorded as `threads`); the
    harness's own work (references, metrics, copies) runs on one thread: under `pytest -n auto`
    every core already has a worker, and intra-op threads on top oversubscribe the cores (OpenMP's
    spinning then costs several times the work)."""
    threads = torch.get_num_threads()
    return repeat.at_threads(1, lambda: _run_case(op, backend, variant, case, threads))


def _run_case(op: str, backend: backends.Backend, variant: str, case: dict, threads: int) -> dict:
    spec = REGISTRY[op]
    row = lambda **f: make_row(spec, backend.name, variant, case, "case", threads=threads, **f)  # noqa: E731
    full = spec.complete(case)          # the description as given identifies the row
    why = backend.unsupported(op, full, variant)
    if why:
        return row(status="unsupported", reason=why)
    if full.get("steps", 1) > 1:
        return _run_chain(spec, backend, variant, full, threads, row)
    kwargs = spec.build(full)
    try:
        oracle = spec.run_reference(kwargs, R.ORACLE)
        baseline = spec.run_reference(kwargs, R.FP32, backend.baseline(op, variant))
    except Exception as e:  # a case the strategies should never draw
        return row(status="error", reason=f"the reference rejected the case: {_first_line(e)}")
    writable = spec.writable(full, kwargs)
    accumulation = spec.accumulation(full, kwargs) if spec.accumulation else {}
    hardness = spec.conditioning(full, kwargs) if spec.conditioning else {}
    copies = [repeat.replica(kwargs) for _ in range(3)]     # pristine inputs for the repeats
    snap = Snapshot(kwargs)
    start = time.perf_counter()
    try:
        returned = repeat.at_threads(threads, lambda: backend.call(op, kwargs, variant))
    except Exception as e:
        return row(status="error", reason=f"raised on a valid case: {_first_line(e)}")
    elapsed = time.perf_counter() - start

    problems = snap.violations(writable)
    problems += _repeats(spec, backend, variant, full, kwargs, returned, copies, threads)
    got = {name: kwargs[name] if name in kwargs else returned.get(name) for name in spec.results}
    fields = judge(spec, got, oracle, baseline, accumulation, writable, full, problems)
    return _verdict_row(row, problems, fields, **hardness, elapsed_s=elapsed)


def _verdict_row(row, problems: list[str], fields: dict, **extra) -> dict:
    """The row of a judged case: fail if anything was found, scored by its worst result."""
    scores = [v for k, v in fields.items() if k.endswith("_score")]
    return row(status="fail" if problems else "pass", reason="; ".join(problems),
               score=max(scores, default=0.0), **fields, **extra)


def judge(spec: OpSpec, got: dict, oracle: dict, baseline: dict, accumulation: dict,
           writable: dict, full: dict, problems: list[str]) -> dict:
    """Each result measured and judged (appending to `problems`): the row's metric columns."""
    fields: dict = {}
    for name in spec.results:
        if oracle[name] is None:
            continue
        if got[name] is None:
            problems.append(f"{name}: not returned")
            continue
        if got[name].shape != oracle[name].shape or got[name].dtype != baseline[name].dtype:
            problems.append(f"{name}: got {got[name].dtype} {list(got[name].shape)}, expected "
                            f"{baseline[name].dtype} {list(oracle[name].shape)}")
            continue
        m = metrics.measure(got[name], oracle[name], baseline[name], accumulation.get(name),
                            writable.get(name), finite_only=bool(full.get("poison")))
        if name in spec.exact:
            verdict = policy.judge_exact(name, metrics.bit_mismatches(got[name], baseline[name], any_nan=True),
                                         got[name].numel())
        else:
            if name in accumulation:
                m.update(policy.elementwise(got[name], oracle[name], accumulation[name]))
            verdict = policy.judge(name, got[name].dtype, m)
            m.pop("elem_worst", None)
        fields.update({f"{name}_{k}": v for k, v in m.items()})
        fields[f"{name}_tol"] = verdict.tolerance
        fields[f"{name}_rms_tol"] = verdict.rms_tolerance
        if verdict.bias_tolerance:
            fields[f"{name}_bias_tol"] = verdict.bias_tolerance
        fields[f"{name}_score"] = verdict.score
        if not verdict.ok:
            problems.append(verdict.reason)
    return fields


def step_seed(seed: int, step: int) -> int:
    """The seed of a chain's step (step 0 is the case's own)."""
    return (seed + 7919 * step) % 2**31


def _run_chain(spec: OpSpec, backend: backends.Backend, variant: str, full: dict, threads: int,
               row) -> dict:
    """A case of `steps` chained calls (long horizons): each step's inputs built from the case with
    its own seed, the pool carried from call to call: the backend's in place, the oracle's in
    float64 and never rounded, the baseline's rounded to the pool's dtype after every step as a
    kernel's is. The outputs of every step (stacked) and the final pool are judged once, against
    the baseline's accumulated error; every call's invariants are checked. The repeats
    (reproducibility, batch invariance) are the single-step cases' business."""
    pool_name, steps = spec.chain, full["steps"]
    first = spec.build(full)
    pool = first[pool_name]
    oracle_pool = baseline_pool = pool
    outs = []
    problems: list[str] = []
    writable = spec.writable(full, first)
    elapsed = 0.0
    for step in range(steps):
        kw = first if step == 0 else {**spec.build({**full, "seed": step_seed(full["seed"], step)}),
                                      pool_name: pool}
        try:
            oracle = spec.run_reference({**kw, pool_name: oracle_pool}, R.ORACLE)
            baseline = spec.run_reference({**kw, pool_name: baseline_pool}, R.FP32,
                                          backend.baseline(spec.name, variant))
        except Exception as e:
            return row(status="error", reason=f"the reference rejected step {step}: {_first_line(e)}")
        snap = Snapshot(kw)
        start = time.perf_counter()
        try:
            returned = repeat.at_threads(threads, lambda: backend.call(spec.name, kw, variant))
        except Exception as e:
            return row(status="error", reason=f"raised on step {step} of a valid chain: {_first_line(e)}")
        elapsed += time.perf_counter() - start
        if not problems:        # the first step that breaks an invariant
            problems += [f"step {step}: {p}" for p in snap.violations(writable)]
        got = {n: kw[n] if n in kw else returned.get(n) for n in spec.results}
        outs.append((got, oracle, baseline))
        oracle_pool, baseline_pool = oracle[pool_name], baseline[pool_name]

    def stacked(i, name):
        parts = [step[i][name] for step in outs]
        return None if any(p is None for p in parts) else torch.stack(parts)

    names = [n for n in spec.results if n != pool_name]
    got = {n: stacked(0, n) for n in names} | {pool_name: pool}
    oracle = {n: stacked(1, n) for n in names} | {pool_name: oracle_pool}
    baseline = {n: stacked(2, n) for n in names} | {pool_name: baseline_pool}
    fields = judge(spec, got, oracle, baseline, {}, writable, full, problems)
    return _verdict_row(row, problems, fields, elapsed_s=elapsed)


def _registered(qualname: str) -> dict[str, bool]:
    """Which optional registrations a torch.library op has: a fake (meta) implementation, an
    autograd kernel."""
    from torch._library import simple_registry
    has = lambda key: torch._C._dispatch_has_kernel_for_dispatch_key(qualname, key)  # noqa: E731
    entry = simple_registry.singleton.find(qualname)
    return dict(fake=entry.fake_impl.kernel is not None or has("Meta"),
                autograd=has("Autograd") or has("AutogradCPU") or has("CompositeImplicitAutograd"))


def run_schema(op: str, backend: backends.Backend, variant: str, case: dict) -> dict:
    """torch.library.opcheck of the backend's op on one case: test_schema always (declared
    mutation and aliasing: a write the schema does not mark fails), test_faketensor and
    test_aot_dispatch_dynamic where the op has a fake implementation, test_autograd_registration
    where it has an autograd kernel. A row of kind "schema"."""
    spec = REGISTRY[op]
    row = lambda **f: make_row(spec, backend.name, variant, case, "schema", **f)  # noqa: E731
    full = spec.complete(case)
    why = backend.unsupported(op, full, variant)
    if why:
        return row(status="unsupported", reason=why)
    try:
        fn, kw = backend.resolve(op, spec.build(full), variant)
        overload = fn.default
    except (NotImplementedError, AttributeError):
        return row(status="unsupported", reason=f"{backend.name} has no torch.library op for {op}")
    qualname = overload._schema.name
    has = _registered(qualname)
    utils = ["test_schema"]
    utils += ["test_faketensor", "test_aot_dispatch_dynamic"] if has["fake"] else []
    utils += ["test_autograd_registration"] if has["autograd"] else []
    not_run = [u for u, reg in (("test_faketensor", "fake"), ("test_autograd_registration", "autograd"))
               if not has[reg]]
    try:
        results = torch.library.opcheck(overload, (), kw, test_utils=utils, raise_exception=False)
    except Exception as e:     # opcheck itself could not run the op
        return row(status="error", reason=f"opcheck raised: {_first_line(e)}", schema_checks=",".join(utils))
    failed = [f"{u}: {str(r).strip().splitlines()[0] if str(r).strip() else r}"
              for u, r in results.items() if r != "SUCCESS"]
    return row(status="fail" if failed else "pass", reason="; ".join(failed),
               schema_checks=",".join(utils),
               schema_not_registered=",".join(f"{u} (no {'fake implementation' if 'fake' in u else 'autograd kernel'})"
                                              for u in not_run))


def _repeats(spec: OpSpec, backend: backends.Backend, variant: str, case: dict, kwargs: dict,
             returned: dict, copies: list[dict], threads: int) -> list[str]:
    """Reproducibility (same thread count, then 1 thread) and batch invariance (one row alone):
    harness/repeat.py. Sentences for what differs."""
    pools = tuple(n for n in spec.results if n in kwargs)
    first = repeat.outcome(returned, kwargs, pools)
    found = []

    def again(kw, what, threads_now=threads):
        try:
            got = repeat.at_threads(threads_now, lambda: backend.call(spec.name, kw, variant))
        except Exception as e:
            found.append(f"raised when {what}: {_first_line(e)}")
            return None
        return repeat.outcome(got, kw, pools)

    same = again(copies[0], "repeated")
    if same is not None:
        found += repeat.compare(first, same, "not reproducible when repeated")
    if threads != 1:
        one = again(copies[1], "repeated at 1 thread", 1)
        if one is not None:
            found += repeat.compare(first, one, f"not reproducible across thread counts "
                                                f"({threads} and 1)")
    rows = spec.rows(case)
    if spec.alone is not None and rows >= 2:
        r = case.get("seed", 0) % rows
        kw_alone, picks = spec.alone(case, copies[2], r)
        try:
            got = repeat.at_threads(threads, lambda: backend.call(spec.name, kw_alone, variant))
        except Exception as e:
            return found + [f"raised on row {r} alone: {_first_line(e)}"]
        for name, in_batch, in_alone in picks:
            a = (kwargs[name] if name in kwargs else returned[name])[in_batch]
            b = (kw_alone[name] if name in kw_alone else got[name])[in_alone]
            n = metrics.bit_mismatches(a, b)
            if n:
                found.append(f"{name}: not batch invariant: row {r} alone differs in {n}/"
                             f"{a.numel()} elements' bits")
    return found


def names(message: str, arg: str) -> bool:
    """Whether an error message names the argument: as a whole word (so `b` is not found in
    "shape"), with underscores also matching spaces ("head first" names head_first), outside
    PyTorch's "size of tensor a (3) must match the size of tensor b (2)"."""
    words = r"[_ ]".join(re.escape(w) for w in arg.split("_"))
    # PyTorch's broadcast error names its operands "tensor a" and "tensor b", not arguments
    message = re.sub(r"\bsize of tensor [ab] \(\d+\)", "", message)
    return re.search(rf"(?<![A-Za-z0-9_]){words}(?![A-Za-z0-9_])", message) is not None


def _reference_rejects(spec: OpSpec, kwargs: dict, arg: str) -> str:
    """"" if the float64 reference rejects the call naming `arg`, else why not."""
    try:
        spec.run_reference(kwargs, R.ORACLE)
        return "the reference accepted this error input"
    except RuntimeError as e:
        return "" if str(e).startswith(arg) else \
            f"the reference blamed another argument: {_first_line(e)}"


def run_error_input(op: str, backend: backends.Backend, variant: str, err: ErrorInput) -> dict:
    """The backend must raise, and its message must name the argument (as the reference does)."""
    spec = REGISTRY[op]
    row = lambda **f: make_row(spec, backend.name, variant, err.case, "error", error_name=err.name,  # noqa: E731
                           expected_arg=err.arg, **f)
    full = spec.complete(err.case)
    if err.backends and backend.name not in err.backends:
        return row(status="unsupported",
                   reason=f"a limit of {', '.join(err.backends)} only, not a contract error")
    kwargs = spec.build(full)
    err.spoil(kwargs)
    if not err.backends:
        rejected = _reference_rejects(spec, kwargs, err.arg)
        if rejected:
            return row(status="error", reason=rejected)
    why = backend.unsupported(op, full, variant)
    moved = {}
    if why:
        # The same spoil on the nearest case the backend supports (a narrow backend still meets
        # the catalogue), if the reference still rejects it for the same argument there.
        near = backend.nearest(op, full)
        if near is not None and not backend.unsupported(op, near, variant):
            near_kwargs = spec.build(near)
            err.spoil(near_kwargs)
            if err.backends or not _reference_rejects(spec, near_kwargs, err.arg):
                kwargs, why, moved = near_kwargs, None, dict(moved_to=case_json(near))
    why = why or backend.emulated(op, err.arg, kwargs)
    if why:
        return row(status="unsupported", reason=why)
    row = functools.partial(row, **moved)
    try:
        backend.call(op, kwargs, variant)
    except Exception as e:
        message = _first_line(e)
        if not names(str(e), err.arg):
            return row(status="fail", message=message,
                       reason=f"raised without naming {err.arg}: {message}")
        if err.detail and backend.name == "ours" and not re.search(err.detail, str(e)):
            # our kernels' messages say what is wrong, not only where (harness/errors.py)
            return row(status="fail", message=message,
                       reason=f"raised naming {err.arg} but not saying /{err.detail}/: {message}")
        return row(status="pass", message=message, reason="")
    return row(status="fail", reason=f"accepted an invalid {err.arg} and returned")
