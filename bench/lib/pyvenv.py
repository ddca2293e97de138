"""Runs a benchmark script inside a Python venv that holds the peers it compares against
(onnxruntime, KServe, ...). The venv is created on first use and lives outside the repository,
at $OUTPOST_PY_VENV (default ~/.cache/outpost-inference-venv)."""

import os
import subprocess
import sys

VENV = os.environ.get("OUTPOST_PY_VENV", os.path.expanduser("~/.cache/outpost-inference-venv"))


def reexec_in_venv(script, packages, imports):
    """Installs `packages` into the venv unless `imports` already import there, then replaces
    this process with `script` run by the venv's interpreter (same arguments). A no-op inside."""
    if os.environ.get("OUTPOST_IN_VENV") == "1":
        return
    python = os.path.join(VENV, "bin", "python")
    if not os.path.exists(python):
        subprocess.check_call([sys.executable, "-m", "venv", VENV])
    if subprocess.run([python, "-c", "import " + ", ".join(imports)], capture_output=True).returncode:
        subprocess.check_call([python, "-m", "pip", "install", "-q", *packages])
    os.execve(python, [python, os.path.abspath(script), *sys.argv[1:]], dict(os.environ, OUTPOST_IN_VENV="1"))
