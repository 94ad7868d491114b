"""Declaring a network: expressions, activations, reductions, the network, and their SymPy form."""
