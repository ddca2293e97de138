#!/usr/bin/env python3
"""bench/inference/run.py -- Outpost's ONNX engine next to onnxruntime, same machine, same run.

For the anchor models (../shared/anchors/models: mlp.onnx 784-512-256-10 Gemm+Relu, cnn.onnx
LeNet-style) at batch 1, 32 and 256 and 1 and 2 threads, it times per-call latency of
  * onnxruntime (in this process, intra_op_num_threads = threads, inter_op = 1, ORT_ENABLE_ALL)
  * Outpost's engine (the InferenceBench release binary, OpenBLAS threads = threads) with
    OPENBLAS_CORETYPE=Haswell (the preset on these machines), with it unset (autodetect), and with
    SkylakeX (AVX-512 kernels, for reference; SKIP_SKYLAKEX=1 drops it), and as "sgemm" under the
    preset with OUTPOST_GEMM=openblas (weight matrices through cblas_sgemm instead of the engine's
    packed GEMM; SKIP_SGEMM=1 drops it)
in ROUNDS interleaved rounds of BLOCK_S seconds per configuration, and reports the median of the
per-round p50s and the ratio onnxruntime_p50 / outpost_p50 (> 1 means Outpost is faster).
Outpost's outputs under each core type are checked against onnxruntime's (rtol 1e-4, atol 1e-5)
and the OpenBLAS kernel that ran is printed, with the engine's weight GEMM and the instruction
set of its direct convolution kernel. Also prints Outpost's model load time. The report is also written to
bench/results/inference-<UTC timestamp>.txt with the host, the load average at start and end, the
repository revision and each round's p50/p99.

Env: ROUNDS=3 BLOCK_S=1.0 MODELS_DIR=../shared/anchors/models MODELS="mlp cnn" THREADS="1 2" BATCHES="1 32 256"
Self-installing: venv at $OUTPOST_PY_VENV (default ~/.cache/outpost-inference-venv) with numpy, onnxruntime.
"""
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
import harness as h  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def bootstrap():
    sys.dont_write_bytecode = True  # keep bench/lib free of __pycache__
    sys.path.insert(0, os.path.join(ROOT, "bench", "lib"))
    import pyvenv
    pyvenv.reexec_in_venv(__file__, ["numpy", "onnxruntime"], ["numpy", "onnxruntime"])


def main():
    import numpy as np
    import onnxruntime as ort

    rounds = int(os.environ.get("ROUNDS", "3"))
    block = float(os.environ.get("BLOCK_S", "1.0"))
    models_dir = os.path.abspath(os.environ.get("MODELS_DIR", os.path.join(ROOT, "..", "shared", "anchors", "models")))
    threads_list = [int(t) for t in os.environ.get("THREADS", "1 2").split()]
    batches = [int(b) for b in os.environ.get("BATCHES", "1 32 256").split()]
    preset = os.environ.get("OPENBLAS_CORETYPE", "Haswell")
    load_at_start = h.loadavg()

    subprocess.check_call(["swift", "build", "-c", "release", *h.RELEASE_FLAGS, "--product", "InferenceBench"], cwd=ROOT,
                          stdout=subprocess.DEVNULL)
    bin_dir = subprocess.check_output(["swift", "build", "-c", "release", *h.RELEASE_FLAGS, "--show-bin-path"], cwd=ROOT,
                                      text=True).strip()
    bench_bin = os.path.join(bin_dir, "InferenceBench")

    tmp = tempfile.mkdtemp(prefix="outpost-infbench.")
    rng = np.random.default_rng(20261129)
    shapes = {"mlp": (784,), "cnn": (1, 28, 28)}
    shapes = {m: shapes[m] for m in os.environ.get("MODELS", "mlp cnn").split()}
    inputs = {}
    for m, shape in shapes.items():
        os.makedirs(os.path.join(tmp, m), exist_ok=True)
        for b in batches:
            x = rng.random((b, *shape), dtype=np.float32)
            x.tofile(os.path.join(tmp, m, f"{b}.in.f32"))
            inputs[(m, b)] = x

    def ort_session(m, threads):
        o = ort.SessionOptions()
        o.intra_op_num_threads = threads
        o.inter_op_num_threads = 1
        o.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        o.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        return ort.InferenceSession(os.path.join(models_dir, m + ".onnx"), o, providers=["CPUExecutionProvider"])

    def time_ort(sess, x):
        for _ in range(20):
            sess.run(None, {"input": x})
        samples = []
        end = time.perf_counter() + block
        while True:
            t0 = time.perf_counter()
            sess.run(None, {"input": x})
            t1 = time.perf_counter()
            samples.append((t1 - t0) * 1e6)
            if t1 >= end:
                break
        samples.sort()
        return samples[len(samples) // 2], samples[min(len(samples) - 1, len(samples) * 99 // 100)]

    # The preset (Haswell on these machines), autodetect, and SkylakeX (AVX-512 kernels) for reference.
    # The weight GEMM is the engine's packed kernel by default; "sgemm" is the preset with
    # OUTPOST_GEMM=openblas, the path before it (and the one a CPU without AVX2 takes).
    variants = [("Haswell", preset), ("auto", None)]
    if os.environ.get("SKIP_SKYLAKEX") != "1":
        variants.append(("SkylakeX", "SkylakeX"))
    if os.environ.get("SKIP_SGEMM") != "1":
        variants.append(("sgemm", preset))
    results = {}   # (engine, model, threads, batch) -> [p50 per round]
    info = {}
    sessions = {(m, t): ort_session(m, t) for m in shapes for t in threads_list}
    expected = {(m, b): sessions[(m, 1)].run(None, {"input": inputs[(m, b)]})[0] for m in shapes for b in batches}
    mismatches = []

    def tag_of(env):  # the output file name InferenceBench uses for this environment
        return env.get("OPENBLAS_CORETYPE", "auto") + (f".{env['OUTPOST_GEMM']}" if "OUTPOST_GEMM" in env else "")
    for r in range(rounds):
        order = variants[r % len(variants):] + variants[:r % len(variants)]
        for m in shapes:
            for t in threads_list:
                for b in batches:
                    p50, p99 = time_ort(sessions[(m, t)], inputs[(m, b)])
                    results.setdefault(("onnxruntime", m, t, b), []).append((p50, p99))
                for name, coretype in order:
                    env = dict(os.environ)
                    env.pop("OPENBLAS_CORETYPE", None)
                    env["OPENBLAS_NUM_THREADS"] = str(t)
                    if coretype:
                        env["OPENBLAS_CORETYPE"] = coretype
                    if name == "sgemm":
                        env["OUTPOST_GEMM"] = "openblas"
                    else:
                        env.pop("OUTPOST_GEMM", None)
                    out = subprocess.check_output([bench_bin, os.path.join(models_dir, m + ".onnx"), os.path.join(tmp, m),
                                                   str(t), str(block), *map(str, batches)], env=env, text=True)
                    for line in out.splitlines():
                        row = json.loads(line)
                        b = row["batch"]
                        results.setdefault((name, m, t, b), []).append((row["p50_us"], row["p99_us"]))
                        info[(name, m)] = (row["core"], row["load_us"], row["conv_isa"], row["gemm"])
                        got = np.fromfile(os.path.join(tmp, m, f"{b}.{tag_of(env)}.out.f32"), dtype=np.float32)
                        want = expected[(m, b)].ravel()
                        if got.shape != want.shape or not np.allclose(got, want, rtol=1e-4, atol=1e-5):
                            mismatches.append(f"{name} {m} b={b} t={t}: max abs diff {np.abs(got - want).max() if got.shape == want.shape else 'shape'}")
        print(f"  round {r + 1}/{rounds} done", flush=True)

    med = lambda xs: float(np.median([x[0] for x in xs]))
    med99 = lambda xs: float(np.median([x[1] for x in xs]))
    report = []
    emit = report.append
    emit(f"bench/inference  {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  onnxruntime {ort.__version__}  "
         f"rounds={rounds} x {block}s  loadavg {os.getloadavg()[0]:.2f}")
    for name, _ in variants:
        first = info[(name, next(iter(shapes)))]
        loads = ", ".join(f"{m} {info[(name, m)][1]:.0f} us" for m in shapes)
        emit(f"outpost[{name}]: OpenBLAS core {first[0]}, weight GEMM {first[3]}, direct conv {first[2]}; load time {loads}")
    emit("outputs match onnxruntime (rtol 1e-4, atol 1e-5) under every core type: " + ("yes" if not mismatches else "NO"))
    for mm in mismatches:
        emit("  MISMATCH " + mm)
    emit("")
    hdr = f"{'model':<6}{'thr':>4}{'batch':>6}{'ort p50 us':>12}{'ort p99':>9}"
    for name, _ in variants:
        hdr += f"{name + ' p50':>14}{'p99':>8}{'ratio':>7}"
    emit(hdr)
    for m in shapes:
        for t in threads_list:
            for b in batches:
                o = results[("onnxruntime", m, t, b)]
                line = f"{m:<6}{t:>4}{b:>6}{med(o):>12.1f}{med99(o):>9.1f}"
                for name, _ in variants:
                    x = results[(name, m, t, b)]
                    line += f"{med(x):>14.1f}{med99(x):>8.1f}{med(o) / med(x):>7.2f}"
                emit(line)
    emit("(columns after onnxruntime: Outpost under each OPENBLAS_CORETYPE; ratio = onnxruntime p50 / Outpost p50,")
    emit(" above 1.00 Outpost is faster; p50/p99 in us per call, median over rounds)")
    print()
    print("\n".join(report))
    write_results(report, results, load_at_start, bench_bin)


def write_results(report, results, load_at_start, bench_bin):
    """The report, a header (host, load, revision, command) and every round's p50/p99 in bench/results/."""
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    git = lambda *a: subprocess.run(["git", "-C", ROOT, *a], capture_output=True, text=True).stdout.strip()
    revision = git("rev-parse", "--short", "HEAD") + (" + uncommitted changes" if git("status", "--porcelain", "--untracked-files=no") else "")
    header = [
        f"date: {h.utc_now_text()}   host: {platform.node()}   nproc: {os.cpu_count()}   cpu: {cpu}",
        f"loadavg at start: {load_at_start}   at end: {h.loadavg()}",
        f"repository: {ROOT} at {revision}",
        f"binary: {bench_bin}",
        f"command: {' '.join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv))}   "
        + " ".join(f"{k}={os.environ[k]}" for k in ("ROUNDS", "BLOCK_S", "MODELS", "THREADS", "BATCHES", "OPENBLAS_CORETYPE", "SKIP_SKYLAKEX", "SKIP_SGEMM") if k in os.environ),
        "",
    ]
    raw = ["", "raw: engine model threads batch -> [p50_us, p99_us] per round"]
    raw += [f"{e} {m} {t} {b} {json.dumps([[round(p, 1), round(q, 1)] for p, q in v])}" for (e, m, t, b), v in sorted(results.items())]
    path = Path(ROOT) / "bench" / "results" / f"inference-{h.utc_stamp()}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(header + report + raw) + "\n")
    print(f"results: {path}")


if __name__ == "__main__":
    bootstrap()
    main()
