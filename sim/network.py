"""The simulated network: a networkx graph of nodes grouped in zones and regions.

Topology: every node hangs off its zone's hub, every zone hub off its region's hub, and
region hubs are meshed.  Each edge (a *link*) has a latency distribution; a message's
delay is the sum of one draw per link on its path (paths are cached).

Faults act here:

* a **partition** separates two groups of nodes (a group is a node, a zone or a region
  name) for a window: messages between them are silently dropped, so callers see
  timeouts, as they would with a real partition;
* **loss**, **duplication**, **reordering** and **added latency** attach to a node and
  affect every message to or from it.

Duplication has one meaning on both paths, :meth:`Network.send` (one message, scheduled as
an event) and :meth:`Network.delays_many` (a batch, as arrays): when a delivered message is
duplicated, the network emits a **copy that is an independent message on the same path**.
The copy gets its own fresh delay (one draw per link, plus the nodes' added latency and
reordering, as for any message), can itself be lost by the same loss faults, is never
duplicated again, and arrives its own transit delay *after the original's arrival*.  With
loss ``l`` and duplication ``d`` on the source and destination nodes::

    P(original delivered)                    = (1 - l_src) (1 - l_dst)
    P(copy delivered | original delivered)   = [1 - (1 - d_src) (1 - d_dst)] (1 - l_src) (1 - l_dst)

so ``d (1 - l)`` for a single faulty node.  A lost original is never duplicated, and a
partition drops a message before it can be duplicated.

Counters: :attr:`Network.dropped` counts every message lost, copies included;
:attr:`Network.duplicated` counts every copy the network made, including copies that were
then lost.  So ``delivered = sent + duplicated - dropped`` on both paths.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any, Final, NamedTuple

import networkx as nx
import numpy as np

from sim.distributions import Sampler
from sim.errors import ModelDefinitionError
from sim.timers import call_at_delay

__all__ = ["Network", "NodeFaults", "Transit"]

_NO_COPIES: Final = np.empty(0)
_NO_COPIES.setflags(write=False)  # shared by every batch without copies: see Transit


@dataclass(slots=True)
class NodeFaults:
    """Message faults currently attached to one node (summed over active faults).

    Each node draws from its own random stream, so a fault on one node never shifts the
    draws made for another (variants keep common random numbers).
    """

    rng: np.random.Generator
    loss: float = 0.0
    duplication: float = 0.0
    reorder: float = 0.0
    added: list[Sampler] = field(default_factory=list)

    @property
    def active(self) -> bool:
        """Whether any fault is attached."""
        return bool(self.loss or self.duplication or self.reorder or self.added)


class Transit(NamedTuple):
    """What the network did to a batch of ``n`` messages sent at once (:meth:`Network.delays_many`).

    ``delays``, ``lost`` and ``duplicated`` have one entry per message; ``copy_delays`` has
    one per *delivered copy*, i.e. it is compact and aligned with
    ``np.flatnonzero(duplicated)``: the copy of message ``np.flatnonzero(duplicated)[j]``
    takes ``copy_delays[j]`` seconds of its own, counted from the original's arrival.
    The arrays belong to the caller, except that a batch without copies shares one
    read-only empty ``copy_delays`` (so the fault-free path allocates nothing for it).
    A named tuple, not a dataclass: it is built twice per fleet tick on the hot path.
    """

    delays: np.ndarray
    """Each original's transit delay in seconds (meaningless where ``lost``)."""
    lost: np.ndarray
    """Boolean: the original was lost (partition or a loss fault)."""
    duplicated: np.ndarray
    """Boolean: the original was delivered and so was a copy of it (copies that were lost are not marked)."""
    copy_delays: np.ndarray
    """The delivered copies' own transit delays, compact: one per ``True`` in ``duplicated``, in order."""


class Network:
    """Carries messages between named nodes; see the module docstring."""

    def __init__(
        self,
        env: Any,
        streams: Callable[[str], np.random.Generator],
        *,
        link_latency: Callable[[str, str], Sampler],
    ) -> None:
        """``streams(name)`` gives named random streams; ``link_latency(kind, link)`` builds
        the sampler of one link (kinds 'access', 'zone', 'region'), each with its own stream
        so that traffic on one link never shifts the delays drawn on another."""
        self._env = env
        self._streams = streams
        self._link_latency = link_latency
        self.graph: nx.Graph[str] = nx.Graph()
        self._paths: dict[tuple[str, str], tuple[Sampler, ...]] = {}
        # per (src, dst): the constant links' sum and the random links, for one message's delay
        self._routes: dict[tuple[str, str], tuple[float, tuple[Sampler, ...]]] = {}
        self._faults: dict[str, NodeFaults] = {}
        self._partitions: list[tuple[frozenset[str], frozenset[str]]] = []
        self.dropped = 0
        self.duplicated = 0

    # -- topology ------------------------------------------------------------------------
    def add_node(self, name: str, *, zone: str, region: str) -> None:
        """Attach node ``name`` to ``zone`` in ``region`` (hubs are created on demand)."""
        if name in self.graph:
            raise ModelDefinitionError(f"network node {name!r} added twice")
        region_hub, zone_hub = f"region:{region}", f"zone:{zone}"
        if region_hub not in self.graph:
            for other in [n for n, data in self.graph.nodes(data=True) if data["kind"] == "region"]:
                self.graph.add_edge(region_hub, other, latency=self._link_latency("region", f"{other}~{region_hub}"))
            self.graph.add_node(region_hub, kind="region", region=region, zone=None)
        if zone_hub not in self.graph:
            self.graph.add_node(zone_hub, kind="zone", region=region, zone=zone)
            self.graph.add_edge(zone_hub, region_hub, latency=self._link_latency("zone", f"{zone_hub}~{region_hub}"))
        self.graph.add_node(name, kind="node", region=region, zone=zone)
        self.graph.add_edge(name, zone_hub, latency=self._link_latency("access", f"{name}~{zone_hub}"))
        self._paths.clear()
        self._routes.clear()

    def nodes(self) -> list[str]:
        """Names of the endpoint nodes (not hubs), in insertion order."""
        return [n for n, data in self.graph.nodes(data=True) if data["kind"] == "node"]

    def groups(self) -> set[str]:
        """Every name a partition may use: nodes, zones and regions."""
        names = set(self.nodes())
        for _, data in self.graph.nodes(data=True):
            if data["kind"] == "node":
                names.add(data["zone"])
                names.add(data["region"])
        return names

    def members(self, group: str) -> frozenset[str]:
        """Endpoint nodes in ``group`` (a node, zone or region name)."""
        found = {
            n
            for n, data in self.graph.nodes(data=True)
            if data["kind"] == "node" and group in (n, data["zone"], data["region"])
        }
        if not found:
            raise ModelDefinitionError(f"no node, zone or region called {group!r}")
        return frozenset(found)

    def _route(self, src: str, dst: str) -> tuple[float, tuple[Sampler, ...]]:
        """The path's constant links summed once, and its random links (drawn per message)."""
        route = self._routes.get((src, dst))
        if route is None:
            path = self._path(src, dst)
            fixed = 0.0
            for sampler in path:
                if sampler.fixed is not None:
                    fixed += sampler.fixed
            route = self._routes[(src, dst)] = (fixed, tuple(s for s in path if s.fixed is None))
        return route

    def _path(self, src: str, dst: str) -> tuple[Sampler, ...]:
        key = (src, dst)
        path = self._paths.get(key)
        if path is None:
            hops = nx.shortest_path(self.graph, src, dst)
            path = tuple(self.graph.edges[a, b]["latency"] for a, b in pairwise(hops))
            self._paths[key] = path
        return path

    # -- faults --------------------------------------------------------------------------
    def faults_of(self, node: str) -> NodeFaults:
        """The fault record attached to ``node`` (created empty on first use)."""
        faults = self._faults.get(node)
        if faults is None:
            faults = self._faults[node] = NodeFaults(self._streams(f"network/faults/{node}"))
        return faults

    def partition(self, side_a: Iterable[str], side_b: Iterable[str] | None) -> tuple[frozenset[str], frozenset[str]]:
        """Cut every path between the two sides (``None``: everyone else); returns a handle."""
        a = frozenset().union(*(self.members(g) for g in side_a))
        b = frozenset().union(*(self.members(g) for g in side_b)) if side_b else frozenset(self.nodes()) - a
        handle = (a, b)
        self._partitions.append(handle)
        return handle

    def heal(self, handle: tuple[frozenset[str], frozenset[str]]) -> None:
        """Remove a partition created by :meth:`partition`."""
        self._partitions.remove(handle)

    def reachable(self, src: str, dst: str) -> bool:
        """Whether no active partition separates ``src`` from ``dst``."""
        return not any((src in a and dst in b) or (src in b and dst in a) for a, b in self._partitions)

    # -- carrying messages ---------------------------------------------------------------
    def delay(self, src: str, dst: str) -> float | None:
        """One message's delay from ``src`` to ``dst``, or None if it is lost."""
        if self._partitions and not self.reachable(src, dst):
            self.dropped += 1
            return None
        total, randoms = self._route(src, dst)
        for sampler in randoms:
            total += sampler()
        if self._faults:
            for node in (src, dst):
                faults = self._faults.get(node)
                if faults is None or not faults.active:
                    continue
                if faults.loss and faults.rng.random() < faults.loss:
                    self.dropped += 1
                    return None
                for added in faults.added:
                    total += added()
                if faults.reorder and faults.rng.random() < faults.reorder:
                    total += faults.rng.exponential(max(total, 1e-3) * 4)
        return total

    def duplicates(self, src: str, dst: str) -> bool:
        """Whether the network makes an extra copy of this (delivered) message; counts it if so."""
        if not self._faults:
            return False
        for node in (src, dst):
            faults = self._faults.get(node)
            if faults is not None and faults.duplication and faults.rng.random() < faults.duplication:
                self.duplicated += 1
                return True
        return False

    def send(self, src: str, dst: str, deliver: Callable[..., None], *args: Any) -> bool:
        """Schedule ``deliver(*args)`` at ``dst``'s arrival time; False if the message is lost.

        A duplicated message's copy is an independent message (module docstring): it draws
        its own delay, may be lost, and arrives that delay after the original.
        """
        if not self._partitions and not self._faults:  # the common case, inlined: no loss, no copy
            route = self._routes.get((src, dst))
            transit, randoms = self._route(src, dst) if route is None else route
            for sampler in randoms:
                transit += sampler()
            call_at_delay(self._env, transit, deliver, *args)
            return True
        delay = self.delay(src, dst)
        if delay is None:
            return False
        self._schedule(delay, deliver, args)
        if self._faults and self.duplicates(src, dst):
            again = self.delay(src, dst)  # the copy: a fresh draw, lost like any message
            if again is not None:
                self._schedule(delay + again, deliver, args)
        return True

    def delays_many(self, src: str, dst: str, n: int, *, copies: bool = True) -> Transit:
        """What happens to ``n`` messages sent now from ``src`` to ``dst``, as arrays (vectorised).

        The fleet path uses this so that millions of readings cost array operations, not
        one event each.  A partition loses every message.  Duplication follows the same
        rule as :meth:`send` (see the module docstring): copies of delivered originals get
        their own delay draws and loss draws, and :class:`Transit` reports only the copies
        that were delivered.

        Draw order (deterministic): the originals' path delays; then per faulty node, ``src``
        first, the originals' loss, duplication, added latency and reordering; then, if
        any original was duplicated, the copies' path delays and per node their loss, added
        latency and reordering.  Without duplication the draws are those of the originals
        alone.

        ``copies=False`` is for messages whose duplicates change nothing (an acknowledgement
        the sender only checks for): duplication is then neither drawn nor counted.
        """
        total = self._path_many(src, dst, n)
        if self._partitions and not self.reachable(src, dst):
            self.dropped += n
            return Transit(total, np.ones(n, dtype=bool), np.zeros(n, dtype=bool), _NO_COPIES)
        lost = np.zeros(n, dtype=bool)
        duplicated = np.zeros(n, dtype=bool)
        if not self._faults:
            return Transit(total, lost, duplicated, _NO_COPIES)  # the common case: nothing to draw, nothing to count
        copy_delays = _NO_COPIES
        if self._faults_many(src, dst, total, lost, duplicated if copies else None):
            duplicated &= ~lost  # a lost original is never duplicated
            made = int(np.count_nonzero(duplicated))
            if made:
                self.duplicated += made
                copy_delays = self._path_many(src, dst, made)
                copy_lost = np.zeros(made, dtype=bool)
                self._faults_many(src, dst, copy_delays, copy_lost, None)
                if copy_lost.any():
                    self.dropped += int(np.count_nonzero(copy_lost))
                    duplicated[np.flatnonzero(duplicated)[copy_lost]] = False
                    copy_delays = copy_delays[~copy_lost]
        self.dropped += int(np.count_nonzero(lost))
        return Transit(total, lost, duplicated, copy_delays)

    def _path_many(self, src: str, dst: str, n: int) -> np.ndarray:
        """``n`` path delays from ``src`` to ``dst``: one draw per link each, summed."""
        total = np.zeros(n)
        for sampler in self._path(src, dst):
            total += sampler.many(n)
        return total

    def _faults_many(
        self, src: str, dst: str, total: np.ndarray, lost: np.ndarray, duplicated: np.ndarray | None
    ) -> bool:
        """Apply the nodes' faults to a batch in place; whether any duplication fault is active.

        ``total`` gains added latency and reordering, ``lost`` the loss draws, and
        ``duplicated`` (None for copies, which are never duplicated again) the duplication
        draws.
        """
        n = len(total)
        duplicating = False
        for node in (src, dst):
            faults = self._faults.get(node)
            if faults is None or not faults.active:
                continue
            rng = faults.rng
            if faults.loss:
                lost |= rng.random(n) < faults.loss
            if faults.duplication and duplicated is not None:
                duplicated |= rng.random(n) < faults.duplication
                duplicating = True
            for added in faults.added:
                total += added.many(n)
            if faults.reorder:
                held = rng.random(n) < faults.reorder
                total += np.where(held, rng.exponential(np.maximum(total, 1e-3) * 4), 0.0)
        return duplicating

    def _schedule(self, delay: float, deliver: Callable[..., None], args: tuple[Any, ...]) -> None:
        call_at_delay(self._env, delay, deliver, *args)
