"""The version of sqlml: a leaf module any layer may import."""

__version__ = "0.1.0"
