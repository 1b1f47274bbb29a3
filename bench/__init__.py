"""bench: a comparative benchmark harness for multilingual dense-retriever training strategies."""

__version__ = "0.1.0"
