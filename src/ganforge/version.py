"""The installed version, in a module of its own so nothing needs the package face to read it."""
__version__ = "0.1.0"
