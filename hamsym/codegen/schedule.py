"""Schedules: the order of the updates inside one Euler step (HL.md sections 4 and 7).

Every derivative of a step is taken at the step-k values. What differs is which
weight costate moves the weights:

- ``nonlocal`` (Gauss-Seidel): costates are updated first and the weights move
  with the new p_w; instantaneous layers are propagated within the step. With
  flip = -1 this is SGD with momentum (HL.md E1).
- ``local`` (the authors' switch): the weights move with the previous step's p_w,
  then p_w is updated: a gradient that arrives one step late.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

from ..expr import DeclarationError

SCHEMES = ("nonlocal", "local")


class FrozenWeightsWarning(UserWarning):
    """A configuration under which the weights can never move."""


@dataclass(frozen=True)
class Schedule:
    scheme: str = "nonlocal"
    reset_neuron_costate: bool = False
    reset_weight_costate: bool = False

    def __post_init__(self):
        if self.scheme not in SCHEMES:
            raise DeclarationError(f"unknown scheme {self.scheme!r}; choose one of {SCHEMES}")
        if self.scheme == "local" and self.reset_weight_costate:
            warnings.warn("scheme='local' with reset_weight_costate=True freezes the weights: "
                          "they move with the previous p_w, which was just reset to zero",
                          FrozenWeightsWarning, stacklevel=3)

    @property
    def weights_use_new_costate(self):
        return self.scheme == "nonlocal"

    def describe(self):
        order = ("p_w+ = (1 + flip*theta) p_w - delta*flip*dH/dw;  w+ = w - delta*beta*p_w+"
                 if self.weights_use_new_costate else
                 "w+ = w - delta*beta*p_w;  p_w+ = (1 + flip*theta) p_w - delta*flip*dH/dw")
        resets = [n for n, on in (("neuron costates", self.reset_neuron_costate),
                                  ("weight costates", self.reset_weight_costate)) if on]
        return order + (f";  then reset to zero: {', '.join(resets)}" if resets else "")
