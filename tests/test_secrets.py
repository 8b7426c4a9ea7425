"""No credentials in tracked files, by a real secret scanner (detect-secrets).

Hash-bearing files (dvc.lock, the `.dvc` files `dvc add` writes, requirements/*.lock,
package-lock.json) hold hashes by design and are left out; a test value that looks like a
secret carries detect-secrets' own `pragma: allowlist secret` comment, visible in review.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from vertiflow.testing import REPO

EXCLUDE = r"(^|/)(dvc\.lock|package-lock\.json|[^/]*\.lock|[^/]*\.dvc)$"


def scan(cwd: Path, *paths: str) -> dict[str, list]:
    scanner = Path(sys.executable).parent / "detect-secrets"
    proc = subprocess.run(
        [str(scanner), "scan", "--exclude-files", EXCLUDE, *paths],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout)["results"]


def test_no_secret_in_any_tracked_file():
    found = scan(REPO)  # with no paths, detect-secrets scans the files git tracks
    assert not found, {f: [(s["type"], s["line_number"]) for s in v] for f, v in found.items()}


def test_the_secret_scan_finds_a_committed_key(tmp_path):
    """The scan above could pass by scanning nothing: here it must find a planted key."""
    repo = tmp_path / "repo"
    shutil.copytree(REPO / "src", repo / "src")
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    leak = repo / "src" / "vertiflow" / "settings.py"
    key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYz" + "EXAMPLEKEY"  # pragma: allowlist secret
    leak.write_text(f'AWS_ACCESS_KEY_ID = "AKIA{"Q3EGRT7NBVXW5HPL"}"\naws_secret = "{key}"\n')
    # What `dvc add extra.txt` writes: an md5, not a secret (a user's `dvc add` failed it)
    (repo / "extra.txt.dvc").write_text(
        "outs:\n- md5: b1946ac92492d2347c6235b4d2611184\n  size: 6\n  hash: md5\n"
        "  path: extra.txt\n"
    )
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    found = scan(repo)
    assert "extra.txt.dvc" not in found, found
    assert "src/vertiflow/settings.py" in found, found
    assert "AWS Access Key" in {s["type"] for s in found["src/vertiflow/settings.py"]}
