"""How long `stage1 --help` takes in a client-only install (docs/client.md: under 150 ms).

    .venv/bin/python tests/benchmarks/bench_cli_help.py [RUNS]

Builds a fresh venv with only `layers/client` installed (not editable, like a researcher's
`pip install ./layers/client`), then times RUNS (default 10) runs of `stage1 --help` there and in the
repository's venv, and prints min / median / max and the heaviest imports (`python -X importtime`).
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def timed(cmd: list[str], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        out.append((time.perf_counter() - started) * 1000)
    return out


def report(label: str, ms: list[float]) -> None:
    print(f"{label}: min {min(ms):.0f} ms, median {statistics.median(ms):.0f} ms, max {max(ms):.0f} ms "
          f"({len(ms)} runs)")


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    with tempfile.TemporaryDirectory() as tmp:
        env_dir = Path(tmp) / "venv"
        venv.create(env_dir, with_pip=False)
        python = env_dir / "bin" / "python"
        source = Path(tmp) / "src"  # a copy: pip's build/ and egg-info stay out of the checkout
        shutil.copytree(REPO / "layers" / "client", source,
                        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build"))
        subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                        "--disable-pip-version-check", str(source)], check=True)
        report("client-only install, stage1 --help", timed([str(env_dir / "bin" / "stage1"), "--help"], runs))
        report("repository venv (editable), stage1 --help", timed([str(REPO / ".venv" / "bin" / "stage1"), "--help"],
                                                                  runs))
        trace = subprocess.run([str(python), "-X", "importtime", "-c", "import stage1_client.cli"],
                               capture_output=True, text=True, check=True).stderr.splitlines()
        rows = sorted((line for line in trace if "|" in line and "cumulative" not in line),
                      key=lambda line: int(line.split("|")[1]), reverse=True)[:6]
        print("heaviest imports of stage1_client.cli (self us | cumulative us | module):")
        for line in rows:
            print("  " + line.removeprefix("import time:").strip())


if __name__ == "__main__":
    main()
