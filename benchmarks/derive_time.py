"""How long derive() takes for a 5-layer tanh MLP, at width 4 and at width 4096.

hamsym derives at the layer level, never expanding to scalars: the equations are
matrix expressions whose sizes are plain numbers, so the time should not depend
on the width. This prints the median derive() time of each width side by side
and their ratio (about 1 is the goal), then how generating the module's source
grows with depth.

    python benchmarks/derive_time.py [--repeats N]
"""

from __future__ import annotations

import argparse
import statistics
import time

import hamsym as hs

LAYERS = 5
WIDTHS = (4, 4096)


def mlp(width, layers=LAYERS):
    """layers tanh layers of the given width, biases, squared loss on the last one."""
    net = hs.Network(f"mlp{layers}_w{width}")
    h = net.input("u", width)
    y = net.target("y", width)
    for k in range(1, layers + 1):
        W, b = net.weight(f"W{k}", (width, width)), net.weight(f"b{k}", width)
        h = net.instant(f"h{k}", hs.tanh(W @ h + b))
    net.loss(hs.sum_squares(h - y) / 2)
    return net


def derive_times(width, repeats):
    """derive() wall times in seconds; each repeat declares a fresh network first (untimed)."""
    times = []
    for _ in range(repeats):
        net = mlp(width)
        start = time.perf_counter()
        system = hs.derive(net)
        times.append(time.perf_counter() - start)
        assert len(system.equations) == 4 * LAYERS
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    derive_times(WIDTHS[0], 2)                      # warm up imports and caches
    medians = {}
    print(f"derive() of a {LAYERS}-layer tanh MLP, median of {args.repeats} runs")
    print(f"{'width':>8} {'median ms':>10} {'min ms':>8} {'max ms':>8}")
    for width in WIDTHS:
        times = derive_times(width, args.repeats)
        medians[width] = statistics.median(times)
        print(f"{width:>8} {1e3 * medians[width]:>10.2f} {1e3 * min(times):>8.2f} {1e3 * max(times):>8.2f}")
    small, large = WIDTHS
    print(f"ratio width {large} / width {small}: {medians[large] / medians[small]:.2f}")

    print("\nderive() + render() (the module source) of a width-16 tanh MLP, by depth")
    print(f"{'layers':>8} {'derive ms':>10} {'render ms':>10} {'lines':>7}")
    for layers in (5, 20, 50):
        net = mlp(16, layers)
        start = time.perf_counter()
        system = hs.derive(net)
        mid = time.perf_counter()
        source = hs.render(system)
        end = time.perf_counter()
        print(f"{layers:>8} {1e3 * (mid - start):>10.1f} {1e3 * (end - mid):>10.1f} "
              f"{len(source.splitlines()):>7}")


if __name__ == "__main__":
    main()
