"""Deriving Hamilton's equations: the chain rule, the Hamiltonian, the system."""
