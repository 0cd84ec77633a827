"""LLM Studio, installed with `pip install .`: the native `llmstudio` program and its launcher (launcher.py)."""
try:
    from ._build_info import LLMS_VERSION as __version__
except ImportError:  # the source tree, not an installed wheel
    __version__ = "0+unknown"
