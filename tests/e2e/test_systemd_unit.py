"""test_systemd_unit.py: config/infd.service is a unit systemd accepts. systemd-analyze
verify also checks that ExecStart is executable, so the test verifies a copy whose ExecStart
names the binary under test instead of the install path /usr/local/bin/infd."""
import os
import shutil
import subprocess

import pytest

from conftest import INFD_BIN, ROOT

UNIT = os.path.join(ROOT, "config", "infd.service")


def test_unit_is_type_notify_with_watchdog():
    text = open(UNIT, encoding="utf-8").read()
    assert "Type=notify" in text
    assert "WatchdogSec=" in text
    assert "ExecStart=/usr/local/bin/infd " in text


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze is not installed")
def test_systemd_analyze_verify_accepts_the_unit(tmp_path):
    text = open(UNIT, encoding="utf-8").read()
    unit = tmp_path / "infd.service"
    unit.write_text(text.replace("/usr/local/bin/infd", os.path.abspath(INFD_BIN)))
    proc = subprocess.run(["systemd-analyze", "verify", str(unit)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stderr.strip() == "", proc.stderr
