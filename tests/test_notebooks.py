"""The notebooks in notebooks/ are committed executed, re-executing them reproduces the numbers they show, and those
numbers agree with independent checks.

Each notebook is executed with nbclient in a fresh kernel of this interpreter (the project's environment), with its
working directory and TMPDIR in the test's tmp_path. Its last cell prints its key numbers as JSON. The committed
notebook must hold the outputs of one top-to-bottom run (so it reads on a web page without running), small enough
to read there (``MAX_NOTEBOOK_BYTES``, ``MAX_IMAGE_BYTES``); the key numbers of a fresh run must equal the committed
ones (floats to ``REL_TOL``, room for another machine's XLA kernels and summation orders, not for a changed result).
The committed outputs come from the versions in uv.lock and from one CPU (``notebooks/machine.json``, written by
``notebooks/record_machine.py``: XLA compiles for the host's instruction set, and float32 trainings drift between
CPU generations, by 6e-5 to 1e-4 relative in notebooks 01, 04 and 05 between two AMD EPYC machines of this
project); with another jax or jaxlib installed, under a lock resolved at the lowest direct versions (where jax
0.8.1 trains notebook 01's networks to a train MSE of 0.107 instead of 0.216), or on another CPU, the numbers
cannot be expected to match, and only that comparison is skipped, with a warning. The tests
then recompute the numbers from the closed forms of docs/theory.md, exact integer binomials and the results table
the sweep wrote, and check the statements the notebooks' text makes about them.

After changing a notebook, execute it again in place, record the machine and commit both:
``uv run jupyter execute --inplace notebooks/NAME.ipynb`` (every notebook, when the machine changed), then
``uv run python notebooks/record_machine.py``.
"""

import base64
import importlib.metadata
import importlib.util
import json
import math
import sys
import tomllib
import warnings
from pathlib import Path

import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient

from lawrob.sweep import read_csv

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
CELL_TIMEOUT = 600  # seconds per cell; each notebook takes well under a minute on two CPU cores
LN2 = math.log(2.0)
REL_TOL, ABS_TOL = 1e-5, 1e-9  # fresh key numbers against the committed ones
RUN_DEPENDENT = {"out_dir", "report", "figures"}  # paths into the run's temporary folder
MAX_NOTEBOOK_BYTES, MAX_IMAGE_BYTES = 600_000, 150_000
NUMERIC_STACK = ("jax", "jaxlib")  # the packages whose versions fix the notebooks' trained numbers


def at_locked_versions(lock_file: Path = NOTEBOOKS.parent / "uv.lock") -> bool:
    """Whether the installed ``NUMERIC_STACK`` has the versions of the project's lock, those the committed outputs
    came from. A lock resolved at the lowest direct versions (``uv lock --resolution lowest-direct``, which records
    its resolution mode) is a floor test's, not that lock."""
    lock = tomllib.loads(lock_file.read_text())
    if lock.get("options", {}).get("resolution-mode") == "lowest-direct":
        return False
    locked = {(p["name"], p["version"]) for p in lock["package"] if p["name"] in NUMERIC_STACK}
    return all((name, importlib.metadata.version(name)) in locked for name in NUMERIC_STACK)


def _record_machine():
    spec = importlib.util.spec_from_file_location("record_machine", NOTEBOOKS / "record_machine.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


record_machine = _record_machine()


def on_recorded_machine(record: Path = record_machine.RECORD) -> bool:
    """Whether this CPU is the one the committed outputs were executed on (``notebooks/machine.json``)."""
    if not record.exists():
        return False
    return json.loads(record.read_text())["fingerprint"] == record_machine.fingerprint()["fingerprint"]


def h2(q: float) -> float:
    return -q * math.log2(q) - (1 - q) * math.log2(1 - q)


def printed_summary(nb) -> dict:
    """The key numbers the last cell of an executed notebook printed."""
    outputs = nb.cells[-1].outputs
    assert outputs and outputs[-1]["output_type"] == "stream", "the last cell prints the key numbers"
    return json.loads(outputs[-1]["text"])


def differences(committed, fresh, path: str = "") -> list[str]:
    """Where ``fresh`` differs from ``committed``: floats beyond REL_TOL/ABS_TOL, anything else at all
    (the ``RUN_DEPENDENT`` keys are skipped)."""
    if isinstance(committed, dict) and isinstance(fresh, dict):
        if committed.keys() != fresh.keys():
            return [f"{path}: keys {sorted(committed)} != {sorted(fresh)}"]
        return [d for key in committed if key not in RUN_DEPENDENT
                for d in differences(committed[key], fresh[key], f"{path}.{key}")]
    if isinstance(committed, list) and isinstance(fresh, list) and len(committed) == len(fresh):
        return [d for i, (a, b) in enumerate(zip(committed, fresh)) for d in differences(a, b, f"{path}[{i}]")]
    if isinstance(committed, float) and isinstance(fresh, (int, float)) and not isinstance(fresh, bool):
        same = (math.isclose(committed, fresh, rel_tol=REL_TOL, abs_tol=ABS_TOL)
                or (math.isnan(committed) and math.isnan(fresh)))
        return [] if same else [f"{path}: committed {committed!r}, fresh {fresh!r}"]
    return [] if committed == fresh else [f"{path}: committed {committed!r}, fresh {fresh!r}"]


def check_committed_executed(name: str, nb) -> None:
    """``nb`` holds the outputs of one top-to-bottom run, every image and the whole file small."""
    assert (NOTEBOOKS / name).stat().st_size <= MAX_NOTEBOOK_BYTES, f"{name} is too large to read on a web page"
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1)), f"{name}: run top to bottom"
    for cell in code:
        assert all(output["output_type"] != "error" for output in cell.outputs), f"{name}: a cell failed"
        for output in cell.outputs:
            for mime, payload in output.get("data", {}).items():
                if mime.startswith("image/"):
                    assert len(base64.b64decode(payload)) <= MAX_IMAGE_BYTES, f"{name}: an image is too large"


def execute(name: str, tmp_path: Path, monkeypatch) -> dict:
    """Run notebooks/``name`` afresh, check it reproduces its committed key numbers, and return them."""
    committed = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(committed)
    check_committed_executed(name, committed)
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    nb.cells.insert(0, nbformat.v4.new_code_cell("import sys\nprint(sys.prefix)"))
    client = NotebookClient(nb, timeout=CELL_TIMEOUT, startup_timeout=180, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    assert nb.cells[0].outputs[0]["text"].strip() == sys.prefix, "the kernel must run in the project's environment"
    fresh = printed_summary(nb)
    if at_locked_versions() and on_recorded_machine():
        assert differences(printed_summary(committed), fresh) == [], f"{name} no longer reproduces its committed numbers"
    else:
        warnings.warn(f"{name}: the committed numbers come from other versions or another CPU; not compared "
                      f"(differences: {differences(printed_summary(committed), fresh)[:3]})", stacklevel=2)
    return fresh


def test_at_locked_versions_reads_the_lock(monkeypatch, tmp_path):
    locked = at_locked_versions()  # True with `uv run` (uv syncs the lock), False at the lowest direct versions
    installed = {name: importlib.metadata.version(name) for name in NUMERIC_STACK}
    packages = "".join(f'[[package]]\nname = "{name}"\nversion = "{version}"\n\n' for name, version in installed.items())
    (tmp_path / "highest.lock").write_text("version = 1\n\n" + packages)
    (tmp_path / "lowest.lock").write_text('version = 1\n\n[options]\nresolution-mode = "lowest-direct"\n\n' + packages)
    assert at_locked_versions(tmp_path / "highest.lock") and not at_locked_versions(tmp_path / "lowest.lock")
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "0.0.1")
    assert at_locked_versions() is False and isinstance(locked, bool)


def test_the_machine_fingerprint_tells_cpus_apart(tmp_path):
    info = ("processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 17\nstepping\t: 1\n"
            "model name\t: AMD EPYC\nflags\t\t: fpu sse2 avx2 avx512f fma\n\nprocessor\t: 1\n")
    one = record_machine.fingerprint(info)
    assert one == record_machine.fingerprint(info) and one["simd"] == "avx2 avx512f fma sse2"
    assert record_machine.fingerprint(info.replace("model\t\t: 17", "model\t\t: 1"))["fingerprint"] != one["fingerprint"]
    assert record_machine.fingerprint(info.replace(" avx512f", ""))["fingerprint"] != one["fingerprint"]
    here = tmp_path / "machine.json"
    here.write_text(json.dumps(record_machine.fingerprint()))
    other = tmp_path / "other.json"
    other.write_text(json.dumps(one | {"fingerprint": "0" * 16}))
    assert on_recorded_machine(here) and not on_recorded_machine(other)
    assert not on_recorded_machine(tmp_path / "missing.json")


def test_differences_sees_a_changed_number_and_skips_run_paths():
    committed = {"a": 1.0, "b": [2, "x"], "out_dir": "/tmp/one", "c": {"valid": True}}
    assert differences(committed, {"a": 1.0 + 1e-7, "b": [2, "x"], "out_dir": "/tmp/two", "c": {"valid": True}}) == []
    assert differences(committed, {"a": 1.001, "b": [3, "x"], "out_dir": "/tmp/one", "c": {"valid": False}}) == [
        ".a: committed 1.0, fresh 1.001", ".b[0]: committed 2, fresh 3", ".c.valid: committed True, fresh False"]
    assert differences(committed, {"a": 1.0}) != []


def test_notebooks_are_the_four_of_the_spec_and_bring_your_own():
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == [
        "01_quickstart.ipynb", "02_bound_vs_empirical.ipynb", "03_constants.ipynb", "04_mask_information.ipynb",
        "05_bring_your_own.ipynb"]


def test_01_quickstart(tmp_path, monkeypatch):
    s = execute("01_quickstart.ipynb", tmp_path, monkeypatch)
    n, d, c, eps, delta, P = s["n"], s["d"], s["c"], s["eps"], s["delta"], s["prunable_weights"]
    biases = s["num_params"] - P
    assert set(s["methods"]) == {"imp", "random"}
    for name, m in s["methods"].items():
        assert m["lower"] <= m["exact"] * (1 + 1e-9) and m["exact"] <= m["upper"] * (1 + 1e-9), name
        assert m["train_mse"] <= s["sigma2"] - eps, name  # both fit below the noise level, as the text says
        assert m["kept_weights"] == math.floor(0.8**3 * P + 0.5) and m["active"] == m["kept_weights"] + biases
        info = 0.0 if name == "random" else math.log2(math.comb(P, m["kept_weights"]))
        assert m["info_bits"] == pytest.approx(info, rel=1e-9, abs=1e-12)
        assert m["p_eff"] == pytest.approx(info + m["active"] * math.log2(1 + 60 * m["W"] * m["J"] / eps), rel=1e-12)
        # NFP Theorem 4 and BS Theorem 3 as printed (docs/theory.md, sections 3.3 and 4.3), by hand
        nfp = eps / (1152 * math.sqrt(c)) * math.sqrt(n * d * delta / (m["p_eff"] + delta / 2 * math.log(4 / delta)))
        assert m["nfp_value"] == pytest.approx(nfp, rel=1e-12)
        assert m["nfp_scaling"] == pytest.approx(math.sqrt(n * d / m["p_eff"]), rel=1e-12)
        bs = eps / (2**9 * math.sqrt(c)) * math.sqrt(
            n * d / (s["num_params"] * math.log(60 * m["dense_W"] * m["dense_J"] / eps) + math.log(4 / delta)))
        assert m["bs_value"] == pytest.approx(bs, rel=1e-12)
        # n = 64 is far from the mixture conditions 8^3 ln(8/delta) <= n eps^2 (NFP) and 8^4 ... (BS)
        assert not m["nfp_valid"] and not m["bs_valid"] and "mixture condition" in m["nfp_reason"]
    assert s["methods"]["imp"]["p_eff"] > s["methods"]["random"]["p_eff"]
    assert s["nfp_n_min"] == math.ceil(8**3 * math.log(8 / delta) / eps**2)
    assert s["nfp_at_n_min"]["valid"]


def test_02_bound_vs_empirical(tmp_path, monkeypatch):
    s = execute("02_bound_vs_empirical.ipynb", tmp_path, monkeypatch)
    out = Path(s["out_dir"])
    assert out.is_relative_to(tmp_path)  # the sweep wrote into TMPDIR, not into the repository
    table = read_csv(out / "results.csv")
    assert len(table) == s["runs"] == 10 and len({r["config_hash"] for r in table}) == 10  # dense once per seed
    for r in table:
        assert r["lip_lower"] <= r["lip_upper"] * (1 + 1e-9)
        assert r["lip_lower"] <= r["lip_exact"] * (1 + 1e-9) and r["lip_exact"] <= r["lip_upper"] * (1 + 1e-9)
        assert r["fits_below_noise"] == (r["train_mse"] <= r["sigma2"] - r["eps"])
        weights = r["d"] * r["width"] + r["width"]
        kept = r["active"] - (r["width"] + 1)  # biases are never pruned
        assert kept == math.floor(r["density"] * weights + 0.5)
        info = math.log2(math.comb(weights, kept)) if r["method"] == "imp" else 0.0
        assert r["info_bits"] == pytest.approx(info, rel=1e-9, abs=1e-12)
        assert r["p_eff"] == pytest.approx(info + r["active"] * math.log2(1 + 60 * r["W"] * r["J"] / r["eps"]), rel=1e-12)
        assert r["p_eff"] > r["n"] * r["d"]  # the regime the discussion describes
        assert r["bound_nfp_rigorous"] is None and "mixture condition" in r["bound_reason_rigorous"]
        assert not r["bound_violation"]
    fitted = [r for r in table if r["fits_below_noise"]]
    assert s["fitted"] == len(fitted) == s["slope_points"] >= 3
    x = np.log([r["p_eff"] for r in fitted])
    y = np.log([math.sqrt(r["lip_lower"] * r["lip_upper"]) for r in fitted])
    assert s["slope"] == pytest.approx(np.polyfit(x, y, 1)[0], rel=1e-9)
    assert s["slope_low"] < s["slope"] < s["slope_high"]
    assert Path(s["report"]).read_text().startswith("# lawrob sweep report")
    for figure in s["figures"]:
        assert Path(figure).stat().st_size > 1000


def test_03_constants(tmp_path, monkeypatch):
    s = execute("03_constants.ipynb", tmp_path, monkeypatch)
    assert s["failures"] == 0 and s["known_slips"] >= 1 and s["holds"] + s["known_slips"] == s["claims"]
    n, d, eps, delta, c = (s["setting"][k] for k in ("n", "d", "eps", "delta", "c"))
    p, W, J, active = s["p"], s["W"], s["J"], s["active"]
    # BS Theorem 3: printed (2^9, ln(60 W J/eps)) and repaired (192, ln(1 + 16 W J/eps)), docs/theory.md 3.5
    paper = eps / (512 * math.sqrt(c)) * math.sqrt(n * d / (p * math.log(60 * W * J / eps) + math.log(4 / delta)))
    rigorous = eps / (192 * math.sqrt(c)) * math.sqrt(n * d / (p * math.log(1 + 16 * W * J / eps) + math.log(4 / delta)))
    assert s["bs"]["paper"]["value"] == pytest.approx(paper, rel=1e-12)
    assert s["bs"]["rigorous"]["value"] == pytest.approx(rigorous, rel=1e-12)
    # NFP Theorem 4: printed with p_eff in bits or nats; repaired with 13 eps/15 and (p_eff + 1 bit) in nats
    bits, nats = active * math.log2(1 + 60 * W * J / eps), active * math.log(1 + 60 * W * J / eps)
    assert s["p_eff_bits"] == pytest.approx(bits, rel=1e-12) and s["p_eff_nats"] == pytest.approx(nats, rel=1e-12)
    tail = delta / 2 * math.log(4 / delta)
    nfp = {"paper, bits": eps / 1152 * math.sqrt(n * d * delta / (bits + tail)),
           "rigorous, bits": 13 * eps / 15 / 1152 * math.sqrt(n * d * delta / (LN2 * (bits + 1) + tail)),
           "paper, nats": eps / 1152 * math.sqrt(n * d * delta / (nats + tail))}
    for label, value in nfp.items():
        assert s["nfp"][label]["value"] == pytest.approx(value, rel=1e-12), label
    assert all(r["valid"] for r in (*s["bs"].values(), *s["nfp"].values()))
    # the orderings the notebook's text states
    assert s["nfp"]["paper, bits"]["value"] < s["nfp"]["rigorous, bits"]["value"] < s["nfp"]["paper, nats"]["value"]
    assert s["grid_ratio_min"] > 1
    assert s["grid_paper_invalid_below"] < 1 / 48


def test_04_mask_information(tmp_path, monkeypatch):
    s = execute("04_mask_information.ipynb", tmp_path, monkeypatch)
    chain = s["chain"]
    truth = 1 + (chain["p"] - 1) * h2(chain["q"])
    assert chain["truth"] == pytest.approx(truth, rel=1e-12)
    estimates = chain["estimates"]
    for name in ("plugin_entropy", "miller_madow_entropy", "chow_liu_entropy"):
        assert estimates[name]["low"] <= truth <= estimates[name]["high"], name
        assert estimates[name]["value"] == pytest.approx(truth, abs=0.1), name
    assert estimates["marginal_entropy"]["value"] == pytest.approx(chain["p"], abs=0.01)  # every bit is uniform
    assert estimates["marginal_entropy"]["high"] >= truth

    subsets = s["subsets"]
    assert subsets["ceiling"] == pytest.approx(math.log2(math.comb(subsets["p"], subsets["k"])), rel=1e-12)
    assert subsets["violations"] == ["marginal > ceiling"] and subsets["upper"] <= subsets["ceiling"] + 1e-12

    W, J, eps = s["W"], s["J"], s["eps"]
    for method, r in s["pipelines"].items():
        data_free = method in ("random", "magnitude")
        for name in ("plugin", "miller_madow", "chow_liu", "marginal"):
            value = r["estimates"][name]["value"]
            assert (value == 0.0) if data_free else (value > 0.0), (method, name)
        assert 0.0 < r["upper"] <= r["estimates"]["ceiling"]["value"] + 1e-9
        assert r["active"] == 8 + 5  # half of the 16 weights, and the 5 biases
        assert r["p_eff"] == pytest.approx(r["upper"] + r["active"] * math.log2(1 + 60 * W * J / eps), rel=1e-12)

    lemma = s["lemma1"]
    assert lemma["C0"] == pytest.approx(144 * lemma["L"] ** 2 / (lemma["n"] * lemma["d"]), rel=1e-12)
    delta = lemma["delta"]
    certified = delta * (lemma["alpha"] ** 2 / (72 * lemma["C0"]) - math.log(2 / delta)) / LN2
    assert lemma["bits"] == pytest.approx(certified, rel=1e-12)
    assert lemma["bits"] < 0  # vacuous at this size, as the notebook says
    at_needed = lemma["alpha"] ** 2 * lemma["n_needed"] * lemma["d"] / (72 * 144 * lemma["L"] ** 2)
    assert at_needed == pytest.approx(math.log(2 / delta), rel=1e-12)  # the break-even sample size
    assert lemma["round_trip"] == pytest.approx(5.0, rel=1e-9)


def test_05_bring_your_own(tmp_path, monkeypatch):
    s = execute("05_bring_your_own.ipynb", tmp_path, monkeypatch)
    n, d, c, eps, delta = s["n"], s["d"], s["c"], s["eps"], s["delta"]
    assert set(s["networks"]) == {"flax", "equinox"}
    for name, r in s["networks"].items():
        assert r["sizes"] == [4, 32, 32, 1], name
        assert r["max_difference"] < 1e-5, name  # the converted network is the library's own function
        assert 0 < r["lower"] <= r["upper"] * (1 + 1e-9), name
        p = 4 * 32 + 32 + 32 * 32 + 32 + 32 + 1
        assert r["p"] == p
        assert r["fits_below_noise"] == (r["train_mse"] <= s["sigma2"] - eps)
        # p_eff of a dense network (no mask information) and both bounds as printed, by hand (docs/theory.md 3.3, 4.3)
        assert r["p_eff"] == pytest.approx(p * math.log2(1 + 60 * r["W"] * r["J"] / eps), rel=1e-12)
        bs = eps / (2**9 * math.sqrt(c)) * math.sqrt(n * d / (p * math.log(60 * r["W"] * r["J"] / eps) + math.log(4 / delta)))
        assert r["bs_value"] == pytest.approx(bs, rel=1e-12) and r["bs_scaling"] == pytest.approx(math.sqrt(n * d / p))
        nfp = eps / (1152 * math.sqrt(c)) * math.sqrt(n * d * delta / (r["p_eff"] + delta / 2 * math.log(4 / delta)))
        assert r["nfp_value"] == pytest.approx(nfp, rel=1e-12)
        assert not r["bs_valid"] and not r["nfp_valid"]  # n = 64 is far below the mixture condition
        assert r["lower"] > r["bs_value"] and r["lower"] > r["nfp_value"]  # the text's closing statement
