"""chairgen: up-convolutional generators of chairs, tables and cars (Dosovitskiy et al., TPAMI 2017)."""

__version__ = "0.1.0"
