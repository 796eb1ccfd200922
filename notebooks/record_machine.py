"""Record which CPU the committed notebook outputs were executed on (``notebooks/machine.json``).

XLA compiles for the host's instruction set, so float32 trainings drift between CPU generations (notebooks 01, 04
and 05 moved by 6e-5 to 1e-4 relative between two AMD EPYC machines of this project, one train MSE from 7e-7 to
2e-6): ``tests/test_notebooks.py`` compares a fresh run's key numbers with the committed ones only on the machine
recorded here (and at the locked jax). After executing the notebooks in place, run

    uv run python notebooks/record_machine.py
"""

import hashlib
import json
from pathlib import Path

RECORD = Path(__file__).resolve().parent / "machine.json"
FIELDS = ("vendor_id", "cpu family", "model", "stepping")


def fingerprint(cpuinfo: str | None = None) -> dict:
    """The CPU's vendor, family, model, stepping and SIMD flags (from /proc/cpuinfo), and a short hash of them."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
    first = cpuinfo.split("\n\n")[0]
    values = {}
    for line in first.splitlines():
        key, _, value = line.partition(":")
        values[key.strip()] = value.strip()
    simd = sorted(f for f in values.get("flags", "").split() if f.startswith(("avx", "sse", "fma", "amx")))
    described = {field: values.get(field, "") for field in FIELDS} | {"simd": " ".join(simd)}
    digest = hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:16]
    return {"fingerprint": digest, "cpu": values.get("model name", "")} | described


if __name__ == "__main__":
    RECORD.write_text(json.dumps(fingerprint(), indent=2) + "\n")
    print(f"recorded {RECORD}")
