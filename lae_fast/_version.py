"""The package version, in one place (read by the package, model files and the build)."""
__version__ = "0.2.0"
