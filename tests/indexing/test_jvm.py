"""The JVM pyserini runs on leaves Ctrl-C to Python."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import os, signal, time
signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal, even when run in background
from tessera.indexing.jvm import pyserini
pyserini()
try:
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(5)
    print("no interrupt")
except KeyboardInterrupt:
    print("caught")
"""


def test_ctrl_c_after_the_jvm_started_is_a_keyboard_interrupt() -> None:
    # the JVM's own handler exited the process at once (rc 130): no finally block, no clean
    # checkpoint, and torch threads torn down mid-step (a SIGSEGV in training)
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "caught", result.stderr[-2000:]
