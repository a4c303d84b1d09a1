"""Sign-bit sketches of every stored vector, kept in memory bit-sliced: a shortlist in milliseconds.

A vector's *sketch* has one bit per dimension, set where the value is above the centre (the
mean of the model's vectors: see :func:`centre_of`); a vector of more than ``SKETCH_BITS``
dimensions is folded first (bit k is the sign of the sum of dimensions k, k + B, k + 2B …),
so a 1,536-dimension sketch costs what a 384 one does. The Hamming distance between two
sketches estimates the angle between their vectors (around the centre).

The sketches are held *bit-sliced*: plane b is one Python int whose bit i is bit b of lane
i's sketch. A query's Hamming distance to every lane is then counted with whole-int XOR,
AND and OR (a carry-save adder per pair of planes, about five operations of n bits each per
plane) instead of n interpreter-level XOR-and-popcounts: at 100,000 lanes that is about two
thousand C-level passes over 12.5 KB instead of a hundred thousand Python objects. The
lanes nearest the query come out of a binary search over the distance counter. Memory is
n × B / 8 bytes (4.8 MB at 100,000 × 384) plus 8 bytes per lane for its row id.

Lanes are appended when vectors are added and cleared from the ``live`` mask when they are
removed; :class:`SketchIndex` never rereads the database by itself.
"""

from __future__ import annotations

import operator
import re
import sys
from array import array
from collections.abc import Iterable, Sequence

#: The most bits a sketch has; longer vectors are folded onto this many.
SKETCH_BITS = 384
#: Lanes transposed at a time when adding (bounds the temporary text: CHUNK × B characters).
CHUNK = 4096

_NONZERO = re.compile(rb"[^\x00]")


def bits_for(dim: int) -> int:
    """How many bits the sketch of a ``dim``-dimension vector has."""
    return min(dim, SKETCH_BITS)


def sketch(vec: Sequence[float], centre: Sequence[float] | None = None) -> int:
    """Bit k set where (the fold of) dimension k of ``vec − centre`` is positive."""
    if centre is not None and len(centre) == len(vec):
        vec = list(map(operator.sub, vec, centre))
    width = bits_for(len(vec))
    folded = list(vec[:width])
    for start in range(width, len(vec), width):
        part = vec[start:start + width]
        folded[:len(part)] = map(operator.add, folded, part)
    return int("".join(["1" if v > 0 else "0" for v in reversed(folded)]) or "0", 2)


def centre_of(vectors: Sequence[Sequence[float]]) -> list[float]:
    """The mean of some vectors of one length.

    Embeddings are anisotropic (e5-small's: a mean pairwise cosine of 0.87 on click), so the
    sign of a raw dimension is nearly the same for every vector and says little; signs taken
    around the mean keep the differences. On click's 677 e5-small vectors, the exact top 10
    among the nearest 40 by Hamming distance went from 54 % to 92 % (docs/benchmarks.md).
    """
    total = [0.0] * len(vectors[0])
    for vec in vectors:
        total = list(map(operator.add, total, vec))
    return [t / len(vectors) for t in total]


def set_lanes(mask: int) -> list[int]:
    """The positions of the set bits of ``mask``, ascending."""
    data = mask.to_bytes((mask.bit_length() + 7) // 8, "little")
    out: list[int] = []
    for found in _NONZERO.finditer(data):
        base = found.start() * 8
        byte = data[found.start()]
        while byte:
            low = byte & -byte
            out.append(base + low.bit_length() - 1)
            byte ^= low
    return out


def _mask_of(lanes: Iterable[int], size: int) -> int:
    buf = bytearray((size + 7) // 8)
    for lane in lanes:
        buf[lane >> 3] |= 1 << (lane & 7)
    return int.from_bytes(buf, "little")


def distance_counter(planes: Sequence[int], query: int, ones: int) -> list[int]:
    """Per-lane Hamming distance to ``query`` as a bit-sliced binary number (least significant plane first).

    ``ones`` has a bit set for every lane. Full adders (carry-save) take two planes at a time
    into each weight; what is left over at the end is rippled in with half adders.
    """
    state: list[int] = []  # state[j]: the lanes' bit of weight 2**j
    pending: list[int | None] = []  # a plane of weight 2**j waiting for a partner

    def add(x: int, j: int) -> None:
        while True:
            if j == len(state):
                state.append(0)
                pending.append(None)
            waiting = pending[j]
            if waiting is None:
                pending[j] = x
                return
            pending[j] = None
            s = state[j]
            u = s ^ waiting
            state[j] = u ^ x
            x = (s & waiting) | (u & x)  # the carry, of weight 2**(j+1)
            j += 1
            if not x:
                return

    for b, plane in enumerate(planes):
        add(plane ^ ones if query >> b & 1 else plane, 0)
    j = 0
    while j < len(state):  # ripple what waits into the state
        carry = pending[j]
        pending[j] = None
        k = j
        while carry:
            if k == len(state):
                state.append(0)
                pending.append(None)
            s = state[k]
            state[k] = s ^ carry
            carry = s & carry
            k += 1
        j += 1
    return state


def below(counter: Sequence[int], value: int, ones: int) -> int:
    """The lanes whose counted distance is less than ``value``."""
    if value >> len(counter):
        return ones
    less, equal = 0, ones
    for j in range(len(counter) - 1, -1, -1):
        plane = counter[j]
        if value >> j & 1:
            less |= equal & ~plane
            equal &= plane
        else:
            equal &= ~plane
    return less


class SketchIndex:
    """Every (row id, sketch) of one model and dimension, bit-sliced; lanes keep their order."""

    def __init__(self, dim: int, centre: Sequence[float] | None = None) -> None:
        self.dim = dim
        self.centre = centre  # what the sketches were taken around
        self.bits = bits_for(dim)
        self.planes = [0] * self.bits
        self.size = 0  # lanes used, removed ones included
        self.live = 0  # a bit per lane still present
        self._ids = array("q")  # each lane's row id

    def __len__(self) -> int:
        return self.live.bit_count()

    @property
    def removed(self) -> int:
        return self.size - len(self)

    def memory(self) -> int:
        """Bytes held: the planes, the live mask and the row ids."""
        return sum(map(sys.getsizeof, self.planes)) + sys.getsizeof(self.live) + sys.getsizeof(self._ids)

    def ids(self, lanes: Iterable[int]) -> list[int]:
        ids = self._ids
        return [ids[lane] for lane in lanes]

    def live_ids(self) -> list[int]:
        return self.ids(set_lanes(self.live))

    def add(self, items: Sequence[tuple[int, int]]) -> None:
        """Append lanes for (row id, sketch) pairs (sketches of ``bits`` bits)."""
        width = self.bits
        for start in range(0, len(items), CHUNK):
            part = items[start:start + CHUNK]
            rows = "".join([format(s, f"0{width}b") for _, s in part])  # lane-major, high bit first
            for b in range(width):
                column = rows[width - 1 - b::width]  # bit b of every lane in the part, lane order
                if "1" in column:
                    self.planes[b] |= int(column[::-1], 2) << self.size
            self._ids.extend(i for i, _ in part)
            self.live |= ((1 << len(part)) - 1) << self.size
            self.size += len(part)

    def remove(self, ids: Iterable[int]) -> int:
        """Clear the lanes of these row ids from the live mask; how many were live."""
        gone = set(ids)
        if not gone:
            return 0
        own = self._ids
        lanes = [lane for lane in set_lanes(self.live) if own[lane] in gone]
        self.live &= ~_mask_of(lanes, self.size)
        return len(lanes)

    def shortlist(self, query: int, k: int) -> list[int]:
        """The ``k`` live lanes nearest ``query`` by Hamming distance (ties: the earlier lanes)."""
        live = self.live
        if live.bit_count() <= k:
            return set_lanes(live)
        ones = (1 << self.size) - 1
        counter = distance_counter(self.planes, query, ones)
        low, high = 0, self.bits  # the smallest distance t with k lanes within it
        while low < high:
            mid = (low + high) // 2
            if (below(counter, mid + 1, ones) & live).bit_count() >= k:
                high = mid
            else:
                low = mid + 1
        nearer = below(counter, low, ones) & live
        out = set_lanes(nearer)
        out += set_lanes(below(counter, low + 1, ones) & live & ~nearer)[:k - len(out)]
        return out
