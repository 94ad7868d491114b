"""The runtime of generated modules: ordinary Python, copied beside each generated module."""
