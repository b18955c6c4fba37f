"""The checkpoints a verification opened, kept compactly (a store holds one for every five
minutes of its life). Pure: no I/O."""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator

from evidence.note import Checkpoint

OpenedCheckpoint = tuple[str, int | None, Checkpoint]  # name, number, what it signs
_INT64 = 2**63


class Opened:
    """The checkpoints that verify (name, number, checkpoint), in the order given, kept
    compactly: a store holds one for every five minutes of its life, about a million in
    ten years. A numbered checkpoint of this log takes 68 bytes (its number, size, root
    and time); any other (a trusted one) is kept as it is."""

    def __init__(self) -> None:
        self.origin: str | None = None
        self.numbers, self.sizes = array("q"), array("q")
        self.roots, self.times = bytearray(), bytearray()
        self.other: dict[int, OpenedCheckpoint] = {}

    def append(self, item: OpenedCheckpoint) -> None:
        name, number, checkpoint = item
        if (
            number is not None
            and -_INT64 <= number < _INT64
            and 0 <= checkpoint.size < _INT64
            and name == f"Checkpoint #{number}"
            and self.origin in (None, checkpoint.origin)
            and len(checkpoint.root) == 32
            and len(checkpoint.time) == 20
            and checkpoint.time.isascii()
        ):
            self.origin = checkpoint.origin
            self.numbers.append(number)
            self.sizes.append(checkpoint.size)
            self.roots += checkpoint.root
            self.times += checkpoint.time.encode()
            return
        self.other[len(self.sizes)] = item
        self.numbers.append(0)
        self.sizes.append(0)
        self.roots += bytes(32)
        self.times += bytes(20)

    def __len__(self) -> int:
        return len(self.sizes)

    def __getitem__(self, index: int) -> OpenedCheckpoint:
        if index in self.other:
            return self.other[index]
        if not 0 <= index < len(self.sizes):
            raise IndexError(index)
        number = self.numbers[index]
        checkpoint = Checkpoint(
            self.origin or "",
            self.sizes[index],
            bytes(self.roots[32 * index : 32 * index + 32]),
            self.times[20 * index : 20 * index + 20].decode(),
        )
        return f"Checkpoint #{number}", number, checkpoint

    def __iter__(self) -> Iterator[OpenedCheckpoint]:
        for index in range(len(self.sizes)):
            yield self[index]

    def size_of(self, index: int) -> int:
        return self.other[index][2].size if index in self.other else self.sizes[index]

    def distinct_sizes(self) -> array[int]:
        """The sizes they sign, each once, rising (none past 2**63 - 1: no log is as long)."""
        sizes: array[int] = array("q")
        others: set[int] = set()
        for index in range(len(self.sizes)):
            size = self.size_of(index)
            if size >= _INT64:
                continue
            if not sizes or size > sizes[-1]:
                sizes.append(size)
            elif size != sizes[-1]:
                others.add(size)
        if others:
            sizes = array("q", sorted(others.union(sizes)))
        return sizes

    def numbered_in_order(self) -> Iterable[OpenedCheckpoint]:
        """The numbered ones by number (as given for equal numbers)."""
        previous = None
        for index in range(len(self.sizes)):
            if index in self.other and self.other[index][1] is None:
                continue
            number = self.other[index][1] if index in self.other else self.numbers[index]
            if previous is not None and number is not None and number < previous:
                numbered = [c for c in self if c[1] is not None]
                return sorted(numbered, key=lambda c: c[1] or 0)
            previous = number
        return (c for c in self if c[1] is not None)


__all__ = ["Opened", "OpenedCheckpoint"]
