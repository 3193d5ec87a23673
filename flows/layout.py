"""A small layered (Sugiyama-style) layout for drawing flows top to bottom, with no layout tool.

Deployments may have no internet and no graphviz, so the drawing is laid out here: loops are
broken by turning the edges that go back to an earlier step around, every box gets the layer of
the longest path to it from the start, long edges pass through placeholder points (the first one
holds the edge's label, so labels never sit on boxes), a few barycentre sweeps reduce crossings,
and boxes are pulled towards their neighbours without overlapping. Pure and deterministic: the
same boxes and links always give the same coordinates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

NODE_GAP = 28.0  # between two boxes in one layer
DUMMY_GAP = 20.0  # between a box and an edge passing it
LANE_GAP = 10.0  # between two edges passing through a layer
RANK_GAP = 16.0  # between one layer of boxes (or labels) and the next
MARGIN = 16.0
SWEEPS = 4
LABEL_INDENT = 6.0  # from the edge line to its label


@dataclass(frozen=True)
class Box:
    """Something to place: its id and size."""

    id: str
    width: float
    height: float


@dataclass(frozen=True)
class Link:
    """A directed edge between two boxes; a label of the given size travels with it."""

    source: str
    target: str
    label_width: float = 0.0
    label_height: float = 0.0


@dataclass(frozen=True)
class Placed:
    """A box's top-left corner and size."""

    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class Route:
    """The points an edge passes through, from its source to its target, and its label's place.

    ``back`` is true for an edge that goes up to an earlier layer (a loop). ``label`` is the
    left end of the label's baseline band: its x and its vertical centre.
    """

    points: tuple[tuple[float, float], ...]
    back: bool
    label: tuple[float, float] | None


@dataclass(frozen=True)
class Layout:
    """Where everything went."""

    width: float
    height: float
    boxes: dict[str, Placed]
    routes: tuple[Route, ...]  # one for each link, in the order given


@dataclass
class _Item:
    """A box or a placeholder point of a long edge, in one rank."""

    id: str
    width: float
    height: float
    rank: int
    dummy: bool
    x: float = 0.0  # centre


def layered(boxes: Sequence[Box], links: Sequence[Link], root: str) -> Layout:
    """Lay ``boxes`` out in layers from ``root`` down. Self-links are not drawn here."""
    ids = [box.id for box in boxes]
    wanted = [link for link in links if link.source != link.target]
    back = _back_links(ids, wanted, root)
    down = [
        (lk.target, lk.source) if i in back else (lk.source, lk.target)
        for i, lk in enumerate(wanted)
    ]
    layer = _longest_path_layers(ids, down)
    items = {b.id: _Item(b.id, b.width, b.height, 2 * layer[b.id], False) for b in boxes}
    chains = _chains(wanted, down, back, items)
    ranks = _initial_order(ids, root, down, chains, items)
    preds, succs = _neighbours(chains, down)
    ranks = _reduce_crossings(ranks, preds, succs)
    _place_x(ranks, items, preds, succs)
    tops = _rank_tops(ranks, items)
    return _finish(boxes, wanted, links, down, back, chains, items, ranks, tops)


def _back_links(ids: list[str], links: Sequence[Link], root: str) -> set[int]:
    """Indices of the links that close a loop, found by a depth-first walk from ``root``."""
    out: dict[str, list[tuple[int, str]]] = {node: [] for node in ids}
    for i, link in enumerate(links):
        out[link.source].append((i, link.target))
    state: dict[str, int] = {}
    back: set[int] = set()
    for start in [root, *ids]:
        if start in state:
            continue
        state[start] = 1
        stack: list[tuple[str, int]] = [(start, 0)]
        while stack:
            node, k = stack[-1]
            if k == len(out[node]):
                stack.pop()
                state[node] = 2
                continue
            stack[-1] = (node, k + 1)
            index, target = out[node][k]
            if state.get(target) == 1:
                back.add(index)
            elif target not in state:
                state[target] = 1
                stack.append((target, 0))
    return back


def _longest_path_layers(ids: list[str], down: list[tuple[str, str]]) -> dict[str, int]:
    """Each box one layer below the lowest box that leads to it."""
    preds: dict[str, list[str]] = {node: [] for node in ids}
    indegree = dict.fromkeys(ids, 0)
    succs: dict[str, list[str]] = {node: [] for node in ids}
    for source, target in down:
        succs[source].append(target)
        preds[target].append(source)
        indegree[target] += 1
    layer = dict.fromkeys(ids, 0)
    ready = [node for node in ids if indegree[node] == 0]
    while ready:
        node = ready.pop(0)
        for target in succs[node]:
            layer[target] = max(layer[target], layer[node] + 1)
            indegree[target] -= 1
            if indegree[target] == 0:
                ready.append(target)
    return layer


def _chains(
    links: Sequence[Link],
    down: list[tuple[str, str]],
    back: set[int],
    items: dict[str, _Item],
) -> list[list[str]]:
    """For each link, the ids from its upper end to its lower end, placeholders between."""
    chains = []
    for i, (upper, lower) in enumerate(down):
        link = links[i]
        top, bottom = items[upper].rank, items[lower].rank
        chain = [upper]
        # The label rides on the placeholder nearest the edge's own source.
        label_rank = bottom - 1 if i in back else top + 1
        for rank in range(top + 1, bottom):
            has_label = rank == label_rank and link.label_width > 0
            width = link.label_width + LABEL_INDENT + 2 if has_label else 0.0
            height = link.label_height if has_label else 0.0
            dummy = _Item(f"~{i}.{rank}", width, height, rank, True)
            items[dummy.id] = dummy
            chain.append(dummy.id)
        chain.append(lower)
        chains.append(chain)
    return chains


def _initial_order(
    ids: list[str],
    root: str,
    down: list[tuple[str, str]],
    chains: list[list[str]],
    items: dict[str, _Item],
) -> list[list[str]]:
    """Ranks filled in the order a depth-first walk from the root meets things."""
    out: dict[str, list[int]] = {node: [] for node in ids}
    for i, (upper, _) in enumerate(down):
        out[upper].append(i)
    count = 1 + max(item.rank for item in items.values())
    ranks: list[list[str]] = [[] for _ in range(count)]
    seen: set[str] = set()

    def visit(start: str) -> None:
        stack = [start]
        while stack:
            node = stack.pop()
            if node in seen:
                continue
            seen.add(node)
            ranks[items[node].rank].append(node)
            for i in out[node]:
                for dummy in chains[i][1:-1]:
                    ranks[items[dummy].rank].append(dummy)
            stack.extend(chains[i][-1] for i in reversed(out[node]))

    for node in [root, *ids]:
        visit(node)
    return ranks


def _neighbours(
    chains: list[list[str]], down: list[tuple[str, str]]
) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    preds: dict[str, list[str]] = {}
    succs: dict[str, list[str]] = {}
    for chain in chains:
        for upper, lower in pairwise(chain):
            succs.setdefault(upper, []).append(lower)
            preds.setdefault(lower, []).append(upper)
    return preds, succs


def _crossings(ranks: list[list[str]], succs: dict[str, list[str]]) -> int:
    total = 0
    for upper, lower in pairwise(ranks):
        where = {node: k for k, node in enumerate(lower)}
        pairs = [(i, where[t]) for i, node in enumerate(upper) for t in succs.get(node, [])]
        total += sum(
            1
            for a, (a1, b1) in enumerate(pairs)
            for a2, b2 in pairs[a + 1 :]
            if (a1 - a2) * (b1 - b2) < 0
        )
    return total


def _reduce_crossings(
    ranks: list[list[str]], preds: dict[str, list[str]], succs: dict[str, list[str]]
) -> list[list[str]]:
    """Barycentre sweeps down and up; the order with fewest crossings wins (first on a tie)."""
    best, best_count = [list(r) for r in ranks], _crossings(ranks, succs)
    current = [list(r) for r in ranks]
    for sweep in range(SWEEPS):
        downward = sweep % 2 == 0
        order = range(1, len(current)) if downward else range(len(current) - 2, -1, -1)
        for r in order:
            fixed = current[r - 1] if downward else current[r + 1]
            near = preds if downward else succs
            current[r] = _by_barycentre(current[r], fixed, near)
        count = _crossings(current, succs)
        if count < best_count:
            best, best_count = [list(r) for r in current], count
    return best


def _by_barycentre(rank: list[str], fixed: list[str], near: dict[str, list[str]]) -> list[str]:
    where = {node: k for k, node in enumerate(fixed)}

    def key(pair: tuple[int, str]) -> float:
        k, node = pair
        found = [where[n] for n in near.get(node, []) if n in where]
        return sum(found) / len(found) if found else float(k)

    return [node for _, node in sorted(enumerate(rank), key=key)]


def _gap(a: _Item, b: _Item) -> float:
    if a.dummy and b.dummy:
        return a.width / 2 + b.width / 2 + LANE_GAP
    return a.width / 2 + b.width / 2 + (DUMMY_GAP if a.dummy or b.dummy else NODE_GAP)


def _place_x(
    ranks: list[list[str]],
    items: dict[str, _Item],
    preds: dict[str, list[str]],
    succs: dict[str, list[str]],
) -> None:
    """Pack each rank, then pull items towards their neighbours' centres a few times."""
    for rank in ranks:
        x = 0.0
        for k, node in enumerate(rank):
            if k:
                x += _gap(items[rank[k - 1]], items[node])
            items[node].x = x
        shift = x / 2
        for node in rank:
            items[node].x -= shift
    for sweep in range(2 * SWEEPS):
        downward = sweep % 2 == 0
        order = range(1, len(ranks)) if downward else range(len(ranks) - 2, -1, -1)
        for r in order:
            near = preds if downward else succs
            wanted = []
            for node in ranks[r]:
                xs = [items[n].x for n in near.get(node, [])]
                wanted.append(sum(xs) / len(xs) if xs else items[node].x)
            _spread(ranks[r], items, wanted)


def _spread(rank: list[str], items: dict[str, _Item], wanted: list[float]) -> None:
    """Closest to the wanted centres while keeping order and gaps: the mean of a left-to-right
    and a right-to-left pass (both keep the gaps, so their mean does too)."""
    n = len(rank)
    if not n:
        return
    left = list(wanted)
    for k in range(1, n):
        left[k] = max(left[k], left[k - 1] + _gap(items[rank[k - 1]], items[rank[k]]))
    right = list(wanted)
    for k in range(n - 2, -1, -1):
        right[k] = min(right[k], right[k + 1] - _gap(items[rank[k]], items[rank[k + 1]]))
    for k, node in enumerate(rank):
        items[node].x = (left[k] + right[k]) / 2


def _rank_tops(ranks: list[list[str]], items: dict[str, _Item]) -> list[tuple[float, float]]:
    """Each rank's top and height."""
    tops = []
    y = MARGIN
    for rank in ranks:
        height = max((items[n].height for n in rank), default=0.0)
        tops.append((y, height))
        y += height + RANK_GAP
    return tops


def _finish(
    boxes: Sequence[Box],
    wanted: Sequence[Link],
    links: Sequence[Link],
    down: list[tuple[str, str]],
    back: set[int],
    chains: list[list[str]],
    items: dict[str, _Item],
    ranks: list[list[str]],
    tops: list[tuple[float, float]],
) -> Layout:
    left = min((items[n].x - items[n].width / 2 for rank in ranks for n in rank), default=0.0)
    shift = MARGIN - left
    for item in items.values():
        item.x += shift
    placed = {}
    for box in boxes:
        item = items[box.id]
        top, height = tops[item.rank]
        y = top + (height - box.height) / 2
        placed[box.id] = Placed(item.x - box.width / 2, y, box.width, box.height)
    routes = _routes(chains, back, items, tops, placed)
    by_link = iter(routes)
    ordered = tuple(
        next(by_link) if link.source != link.target else _self_route(placed[link.source])
        for link in links
    )
    right = max((item.x + item.width / 2 for item in items.values()), default=0.0)
    bottom = tops[-1][0] + tops[-1][1] if tops else 0.0
    return Layout(right + MARGIN, bottom + MARGIN, placed, ordered)


def _self_route(box: Placed) -> Route:
    x = box.x + box.width
    return Route(((x, box.y + 10), (x, box.y + 26)), False, None)


def _routes(
    chains: list[list[str]],
    back: set[int],
    items: dict[str, _Item],
    tops: list[tuple[float, float]],
    placed: dict[str, Placed],
) -> list[Route]:
    ports = _ports(chains, items, placed)
    routes = []
    for i, chain in enumerate(chains):
        points = [ports[(i, "start")]]
        label = None
        for node in chain[1:-1]:
            item = items[node]
            top, height = tops[item.rank]
            if item.width:
                x = item.x - item.width / 2 + 2
                label = (x + LABEL_INDENT, top + height / 2)
            else:
                x = item.x
            # Straight down through a rank, so a bend never cuts across a box beside it.
            points.extend([(x, top), (x, top + height)] if height else [(x, top)])
        points.append(ports[(i, "end")])
        if i in back:
            points.reverse()
        routes.append(Route(tuple(points), i in back, label))
    return routes


def _ports(
    chains: list[list[str]], items: dict[str, _Item], placed: dict[str, Placed]
) -> dict[tuple[int, str], tuple[float, float]]:
    """Where each edge meets its boxes: spread along the bottom (or top) side, in the order of
    the points they head for, so edges leaving one box do not cross at once."""
    sides: dict[tuple[str, str], list[tuple[float, int, str]]] = {}
    for i, chain in enumerate(chains):
        sides.setdefault((chain[0], "bottom"), []).append((items[chain[1]].x, i, "start"))
        sides.setdefault((chain[-1], "top"), []).append((items[chain[-2]].x, i, "end"))
    ports = {}
    for (node, side), ends in sides.items():
        box = placed[node]
        ends.sort()
        step = min(14.0, (box.width - 20) / max(len(ends), 1))
        centre = box.x + box.width / 2
        y = box.y + box.height if side == "bottom" else box.y
        for k, (_, i, end) in enumerate(ends):
            ports[(i, end)] = (centre + (k - (len(ends) - 1) / 2) * step, y)
    return ports
