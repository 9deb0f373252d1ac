"""The set-up a new user runs: the README's commands, the fresh-machine check's, and set-up without root."""
import os
import re
import shutil
import subprocess
import tempfile

import pytest

from .conftest import REPO

SETUP_AND_TEST = "bash scripts/setup.sh && .venv/bin/python -m pytest -q -n auto tests"


def _read(path: str) -> str:
    with open(os.path.join(REPO, path)) as f:
        return f.read()


def test_readme_ci_and_the_fresh_machine_check_run_the_same_commands():
    readme, ci, check = _read("README.md"), _read(".ci/run"), _read("scripts/check_fresh_machine.sh")
    assert f"```bash\n{SETUP_AND_TEST}\n```" in readme and ci.rstrip().endswith(SETUP_AND_TEST)
    assert 'SETUP_AND_TEST="bash scripts/setup.sh && .venv/bin/python -m pytest -q -n auto $TESTS"' in check
    assert re.search(r'^TESTS=\$\{TESTS:-tests\}$', check, re.M)
    assert 'MAIN_JOB="bash scripts/demo.sh"' in check and "\nbash scripts/demo.sh " in readme


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv to drop it")
def test_setup_without_root_or_sudo_names_what_to_install_and_stops():
    """As an unprivileged user on a machine without python3, espeak-ng, festival, flite, curl (no sudo): the one
    apt-get line to run, exit 1, nothing made."""
    root = tempfile.mkdtemp(prefix="setup-")  # readable by the unprivileged user, unlike pytest's tmp_path or /root
    try:
        bin_dir, scripts = os.path.join(root, "bin"), os.path.join(root, "checkout", "scripts")
        os.makedirs(bin_dir)
        os.makedirs(scripts)
        shutil.copy(os.path.join(REPO, "scripts", "setup.sh"), scripts)
        for path in (root, bin_dir, os.path.dirname(scripts), scripts):
            os.chmod(path, 0o755)
        for tool in ("bash", "cat", "dirname", "grep", "id", "basename"):  # everything else is missing
            os.symlink(shutil.which(tool), os.path.join(bin_dir, tool))
        proc = subprocess.run([shutil.which("setpriv"), "--reuid=65534", "--regid=65534", "--clear-groups",
                               os.path.join(bin_dir, "bash"), os.path.join(scripts, "setup.sh")],
                              env={"PATH": bin_dir, "HOME": root}, capture_output=True, text=True, timeout=60)
        made = os.listdir(os.path.dirname(scripts))
    finally:
        shutil.rmtree(root)
    missing = ["python3", "python3-venv", "espeak-ng", "festival", "flite", "curl"]
    if not os.path.isdir("/usr/share/festival/voices/us/cmu_us_slt_arctic_hts"):
        missing.insert(4, "festvox-us-slt-hts")
    with open("/etc/os-release") as f:
        debian = "ID=debian" in f.read().split()
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr == (f"setup: missing {' '.join(missing)}; install them (as root), then run this again:\n"
                           f"    sudo apt-get install -y {' '.join(missing)} {'chromium' if debian else ''}\n")
    assert made == ["scripts"]  # no .venv, nothing else
