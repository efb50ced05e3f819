"""onetable: collect once, share everywhere (数据一次采集，多方共享复用)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("onetable")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0+unknown"
