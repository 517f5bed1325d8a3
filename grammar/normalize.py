"""IR passes before automaton construction: the grammar the compiler really builds.

prepare(grammar) ->
  1. Regex nodes parsed into IR, and structurally equal subtrees made one object (every later
     pass walks a shared subtree once); undefined references raise GrammarError.
  2. unproductive rules (no finite sentence) replaced by NOTHING; an empty language raises.
  3. non-recursive rules (and recursive ones that stop recursing once others are inlined) are
     inlined into their users while that stays small, so that only the rules on recursion
     cycles remain as "call" rules (pushdown frames): JSON keeps one frame per nesting level.
  4. direct left recursion  R: R a | R b | c | d  is rewritten  R: (c | d) (a | b)*;  any other
     left recursion (indirect, or hidden behind a nullable prefix) raises GrammarError.
Invariant of the result: every kept rule is productive and no rule can call itself (directly or
not) before consuming a byte, so a pushdown closure terminates.

The compiler runs these passes in C where it can (prepare_native.py, pda_core.c: gs_prep_run),
with the same decisions: a change here (a threshold, an order, a name) must be made there too
(tests/grammar/test_prepare_native.py and benchmarks/prepare_crosscheck.py compare the two).
"""
from __future__ import annotations

import threading
from operator import is_, is_not

from . import ir
from .errors import GrammarError
from .regex import parse_regex

INLINE_TINY = 24  # a non-recursive rule this small (in NFA states) is inlined at every use,
INLINE_BUDGET = 3000  # a larger one while its copies stay within this budget (or used once)
INLINE_SMALL = 150  # inside recursion cycles: inline a member whose copies stay this small
HOIST_LIMIT = 600  # a bounded repeat whose unrolled copies exceed this many NFA states gets its
HOIST_ITEM = 8  # item (if at least this big) hoisted into a rule: each copy is then one call edge


def _children(node) -> tuple:
    if isinstance(node, (ir.Seq, ir.Alt)):
        return node.items
    if isinstance(node, ir.Repeat):
        return (node.item,)
    if isinstance(node, ir.Automaton):
        return tuple(label for _, label, _ in node.edges)
    return ()


def _rebuild(node, fn):
    """Apply fn to the children of node; returns node itself when nothing changed."""
    if isinstance(node, (ir.Seq, ir.Alt)):
        items = tuple([fn(it) for it in node.items])
        if not any(map(is_not, items, node.items)):
            return node
        return type(node)(items)
    if isinstance(node, ir.Repeat):
        item = fn(node.item)
        return node if item is node.item else ir.Repeat(item, node.min, node.max)
    if isinstance(node, ir.Automaton):
        edges = tuple((q, fn(label), r) for q, label, r in node.edges)
        if all(a[1] is b[1] for a, b in zip(edges, node.edges)):
            return node
        return ir.Automaton(node.start, node.finals, edges)
    return node


def _map_leaves(node, fn):
    """fn on every node, top-down (a node fn changes is not entered), each shared subtree
    rewritten once (an automaton label on thousands of edges), not once per parent."""
    visit, close = _leaf_mapper(fn)
    try:
        return visit(node)
    finally:
        close()


def _leaf_mapper(fn):
    """(_map_leaves(., fn) as a function whose memo lasts as long as it does, close()): mapping
    every rule of a grammar with one mapper rewrites a subtree the rules share once, not once
    per rule.  fn must return the plain leaves (_PLAIN: literals, classes) unchanged: they are
    not passed to it.  close() breaks the recursive closure's reference cycle (which would keep every
    node it saw alive until a cyclic-GC pass); the mapper is unusable after it."""
    memo: dict[int, tuple] = {}
    Seq, Alt = ir.Seq, ir.Alt

    def visit(n):
        got = memo.get(id(n))  # inline, not a wrapper: deep schemas need every stack frame
        if got is None or got[0] is not n:
            out = fn(n)
            if out is n:
                t = type(n)
                if t is Seq or t is Alt:  # _rebuild, with the plain leaves kept without a call
                    items = n.items
                    new = []
                    for it in items:
                        if type(it) in _PLAIN:
                            new.append(it)
                            continue
                        got = memo.get(id(it))  # a shared item's memo, read without a call
                        new.append(got[1] if got is not None and got[0] is it else visit(it))
                    if not all(map(is_, new, items)):
                        out = t(tuple(new))
                else:
                    out = _rebuild(n, visit)
            got = memo[id(n)] = (n, out)
        return got[1]

    def close() -> None:
        nonlocal visit
        visit = None
        memo.clear()

    return visit, close


_MEMO_LIMIT = 200_000


_COUNTS: dict[int, tuple] = {}  # id(node) -> (node, {name: uses})
_SIZES: dict[int, tuple] = {}  # id(node) -> (node, size)
_memo_lock = threading.Lock()
_memo_users = 0  # prepare() calls in flight: the last one out empties the memos
_NO_REFS: dict = {}
_LEAVES = frozenset({ir.Literal, ir.CharClass, ir.ByteClass, ir.Regex})  # nodes without children or refs
_PLAIN = frozenset({ir.Literal, ir.CharClass, ir.ByteClass})  # leaves every rewrite here keeps as they are


def _ref_counts(node) -> dict[str, int]:
    """How many times each rule is referenced inside node (do not mutate the result: a node
    with one child that refers to anything shares that child's dict)."""
    t = type(node)
    if t in _LEAVES:  # no references, and not worth a memo entry
        return _NO_REFS
    got = _COUNTS.get(id(node))  # the memo inline: deep schemas need every stack frame
    if got is not None and got[0] is node:
        return got[1]
    if t is ir.Ref:
        out = {node.name: 1}
    else:
        out, owned = _NO_REFS, False
        for c in (node.items if t is ir.Seq or t is ir.Alt else _children(node)):
            tc = type(c)
            if tc in _LEAVES:
                continue
            if tc is ir.Ref:  # counted here: no call, no memo entry
                if not owned:
                    out, owned = dict(out), True
                out[c.name] = out.get(c.name, 0) + 1
                continue
            got = _COUNTS.get(id(c))  # a shared child's memo, read without a call
            sub = got[1] if got is not None and got[0] is c else _ref_counts(c)
            if not sub:
                continue
            if not out:
                out = sub
                continue
            if not owned:
                out, owned = dict(out), True
            for r, k in sub.items():
                out[r] = out.get(r, 0) + k
    if len(_COUNTS) > _MEMO_LIMIT:
        _COUNTS.clear()
    _COUNTS[id(node)] = (node, out)
    return out


def refs(node, acc: set | None = None) -> set[str]:
    """Names of the rules referenced anywhere inside node (added to acc when given)."""
    names = _ref_counts(node).keys()
    if acc is None:
        return set(names)
    acc |= names
    return acc


def size(node) -> int:
    """Roughly the NFA states the node unrolls to (bounded repeats count every copy)."""
    t = type(node)
    if t is ir.Literal:  # leaves: no memo entry
        return max(len(node.value), 1)
    if t in _LEAVES:
        return 1
    got = _SIZES.get(id(node))  # the memo inline: deep schemas need every stack frame
    if got is not None and got[0] is node:
        return got[1]
    if t is ir.Seq or t is ir.Alt:
        out = 1
        for c in node.items:
            tc = type(c)
            if tc is ir.Literal:
                out += max(len(c.value), 1)
            elif tc in _LEAVES or tc is ir.Ref:
                out += 1
            else:
                got = _SIZES.get(id(c))  # a shared child's memo, read without a call
                out += got[1] if got is not None and got[0] is c else size(c)
    elif t is ir.Repeat:
        out = 1 + size(node.item) * max(node.min if node.max is None else node.max, 1)
    elif t is ir.Automaton:
        out = 1 + len(node.finals)
        for _, label, _ in node.edges:
            out += 1 + size(label)
    else:
        out = 1
        for c in _children(node):
            out += size(c)
    if len(_SIZES) > _MEMO_LIMIT:
        _SIZES.clear()
    _SIZES[id(node)] = (node, out)
    return out


def _resolve_regex(node):
    if isinstance(node, ir.Regex):
        return parse_regex(node.pattern)
    if isinstance(node, ir.Repeat) and node.max is not None and node.max < node.min:
        raise GrammarError(f"repeat bounds min={node.min} > max={node.max}")
    return node


def _resolve_shared(rules: dict) -> dict:
    """The rules with Regex nodes parsed and repeat bounds checked (_resolve_regex, top-down, a
    parsed regex not entered), and every subtree that repeats another one structurally made that
    same object (hash-consing, children first: a key is the node's type, fields and children's
    identities).  The front ends build equal subtrees many times over (a string's unit loop, a
    key's spelling, a member separator); shared, every later pass walks each of them once, and
    the NFA builder replays the first build for the others (state for state what a fresh build
    makes).  Automata (the iteration order of `finals` numbers states) and subclasses are
    rebuilt, never merged."""
    memo: dict[int, tuple] = {}  # id(node) -> (node, its resolved shared copy)
    table: dict = {}  # key -> the shared node
    Seq, Alt, Literal, CharClass, Ref, Repeat = ir.Seq, ir.Alt, ir.Literal, ir.CharClass, ir.Ref, ir.Repeat

    def visit(n):
        got = memo.get(id(n))  # the memo inline: deep schemas need every stack frame
        if got is not None and got[0] is n:
            return got[1]
        t = type(n)
        out = n if t is Seq or t is Alt else _resolve_regex(n)  # (which keeps those as they are)
        if out is not n:
            pass
        elif t is Seq or t is Alt:
            items = n.items
            new = []
            for it in items:
                ti = type(it)
                if ti is Literal:  # leaves shared here, without a call or a memo entry
                    new.append(table.setdefault((ti, it.value), it))
                elif ti is Ref:
                    new.append(table.setdefault((ti, it.name), it))
                else:
                    got = memo.get(id(it))  # a shared item's memo, read without a call
                    new.append(got[1] if got is not None and got[0] is it else visit(it))
            key = (t, *map(id, new))
            out = table.get(key)
            if out is None:
                out = table[key] = n if all(map(is_, new, items)) else t(tuple(new))
        elif t is Literal:
            out = table.setdefault((t, n.value), n)
        elif t is CharClass:
            try:
                out = table.setdefault((t, n.ranges, n.negated), n)
            except TypeError:  # ranges as lists: kept as it is
                pass
        elif t is Ref:
            out = table.setdefault((t, n.name), n)
        elif t is Repeat:
            item = visit(n.item)
            key = (t, id(item), n.min, n.max)
            out = table.get(key)
            if out is None:
                out = table[key] = n if item is n.item else Repeat(item, n.min, n.max)
        else:
            out = _rebuild(n, visit)
        memo[id(n)] = (n, out)
        return out

    try:
        return {name: visit(body) for name, body in rules.items()}
    finally:
        visit = None  # noqa: F841  (the recursive closure's cycle, broken)


def _productive(rules: dict) -> set[str]:
    good: set[str] = set()

    # ids of the composite nodes found productive: one stays so as `good` grows, so a shared
    # subtree is walked again only while it is not (every node is part of `rules`: no id reuse)
    known: set[int] = set()
    Ref, Literal = ir.Ref, ir.Literal

    def prod(node) -> bool:
        t = type(node)
        if t is Ref:
            return node.name in good
        if t is Literal or id(node) in known:
            return True
        if isinstance(node, ir.Seq):
            ok = all(map(prod, node.items))
        elif isinstance(node, ir.Alt):
            ok = any(map(prod, node.items))
        elif isinstance(node, ir.Repeat):
            ok = node.min == 0 or prod(node.item)
        elif isinstance(node, ir.Ref):
            return node.name in good
        elif isinstance(node, (ir.CharClass, ir.ByteClass)):
            return bool(node.ranges) or getattr(node, "negated", False)
        else:
            return True
        if ok:
            known.add(id(node))
        return ok

    changed = True
    while changed:
        changed = False
        for name, body in rules.items():
            if name not in good and prod(body):
                good.add(name)
                changed = True
    prod = None  # noqa: F841  (the recursive closure's cycle, broken)
    return good


def _lead(node, nullable: set[str]) -> tuple[set[str], bool]:
    """(rules that can be entered before any byte is consumed, node matches the empty string)."""
    if isinstance(node, ir.Ref):
        return {node.name}, node.name in nullable
    if isinstance(node, ir.Literal):
        return set(), not node.value
    if isinstance(node, ir.Seq):
        out: set[str] = set()
        for it in node.items:
            r, n = _lead(it, nullable)
            out |= r
            if not n:
                return out, False
        return out, True
    if isinstance(node, ir.Alt):
        out, any_null = set(), False
        for it in node.items:
            r, n = _lead(it, nullable)
            out |= r
            any_null |= n
        return out, any_null
    if isinstance(node, ir.Repeat):
        r, n = _lead(node.item, nullable)
        return r, n or node.min == 0
    if isinstance(node, ir.Automaton):  # a label reads at least one byte
        return {r for q, label, _ in node.edges if q == node.start for r in _lead(label, nullable)[0]}, \
            node.start in node.finals
    return set(), False


def _alternatives(node, name: str, nullable: set[str]) -> list[tuple]:
    """node as a union of sequences, expanded only as far as needed to expose a leading
    Ref(name): every returned sequence either starts with Ref(name) or cannot begin with it."""
    if name not in _lead(node, nullable)[0] or isinstance(node, ir.Ref):
        return [(node,)]
    if isinstance(node, ir.Alt):
        return [a for it in node.items for a in _alternatives(it, name, nullable)]
    if isinstance(node, ir.Seq):
        first, rest = node.items[0], node.items[1:]
        out = []
        for a in _alternatives(first, name, nullable):
            if a == ():
                out.extend(_alternatives(ir.Seq(rest), name, nullable) if rest else [()])
            else:
                out.append(a + rest)
        return out
    if isinstance(node, ir.Repeat):
        if node.max == 0:
            return [()]
        more = ir.Repeat(node.item, max(node.min - 1, 0), None if node.max is None else node.max - 1)
        tail = [a + (more,) for a in _alternatives(node.item, name, nullable)]
        return tail if node.min > 0 else [()] + tail
    return [(node,)]


def _eliminate_direct_left_recursion(name: str, body, nullable: set[str] = frozenset()):
    """R: R a | R b | c  ->  R: c (a | b)*  (when R leads some alternative of its own body)."""
    if name not in _ref_counts(body) or name not in _lead(body, nullable)[0]:  # (a rule it never
        # refers to cannot lead it: the reference counts are memoized, _lead is not)
        return body
    rec, base = [], []
    for a in _alternatives(body, name, nullable):
        if a and a[0] == ir.Ref(name):
            if len(a) > 1:
                rec.append(ir.Seq(a[1:]))
        else:
            base.append(ir.Seq(a))
    if not rec:
        return body
    return ir.Seq((ir.Alt(tuple(base)), ir.Repeat(ir.Alt(tuple(rec)), 0, None)))


def _nullable_rules(rules: dict) -> set[str]:
    nullable: set[str] = set()
    changed = True
    while changed:
        changed = False
        for name, body in rules.items():
            if name not in nullable and _lead(body, nullable)[1]:
                nullable.add(name)
                changed = True
    return nullable


def _check_left_recursion(rules: dict, nullable: set[str] | None = None) -> None:
    """GrammarError naming a left recursion cycle, if any (`nullable`: _nullable_rules(rules),
    when the caller has it)."""
    if nullable is None:
        nullable = _nullable_rules(rules)
    graph = {name: _lead(body, nullable)[0] for name, body in rules.items()}
    state: dict[str, int] = {}  # 1 = on the DFS path, 2 = done

    def dfs(n: str, path: list[str]) -> None:
        state[n] = 1
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                cycle = " -> ".join(path[path.index(m):] + [m]) if m in path else m
                raise GrammarError(f"left recursion is not supported: {cycle}")
            if m not in state:
                dfs(m, path + [m])
        state[n] = 2

    for name in rules:
        if name not in state:
            dfs(name, [name])
    dfs = None  # noqa: F841  (the recursive closure's cycle, broken)


def _sccs(rules: dict) -> list[list[str]]:
    """Strongly connected components of the reference graph (Tarjan, iterative)."""
    graph = {n: sorted(refs(b) & rules.keys()) for n, b in rules.items()}
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]
    for root in rules:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = counter[0]
                counter[0] += 1
                stack.append(node)
                on.add(node)
            if i < len(graph[node]):
                work.append((node, i + 1))
                nxt = graph[node][i]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on:
                    low[node] = min(low[node], index[nxt])
                continue
            for nxt in graph[node]:
                if nxt in on:
                    low[node] = min(low[node], low[nxt])
            if low[node] == index[node]:
                comp = []
                while True:
                    x = stack.pop()
                    on.discard(x)
                    comp.append(x)
                    if x == node:
                        break
                out.append(comp)
    return out


def _inline_cycle_members(kept: dict, start: str, recursive: set[str]) -> dict:
    """Inside recursion cycles inline, a batch per round, members that no longer refer to
    themselves, are small, and neither refer to nor are referred to by the batch."""
    while True:
        counts: dict[str, int] = {}
        for body in kept.values():
            for r, k in _ref_counts(body).items():
                counts[r] = counts.get(r, 0) + k
        batch: dict[str, ir.Node] = {}
        batch_refs: set[str] = set()
        for name, body in kept.items():
            if name == start or name not in recursive or name in batch_refs:
                continue
            rs = refs(body)
            if name in rs or rs & batch.keys() or \
                    size(body) * max(counts.get(name, 0) - 1, 1) > INLINE_SMALL:
                continue
            batch[name] = body
            batch_refs |= rs
        if not batch:
            break
        sub = lambda x: batch[x.name] if isinstance(x, ir.Ref) and x.name in batch else x  # noqa: E731
        kept = {n: _map_leaves(b, sub) if not refs(b).isdisjoint(batch) else b
                for n, b in kept.items() if n not in batch}
    return kept


def _inline(rules: dict, start: str, frames: frozenset = frozenset()) -> dict:
    """Inline small or single-use rules; inside recursion cycles keep a few rules as frames."""
    rules = dict(rules)
    uses: dict[str, int] = {n: 0 for n in rules}
    for body in rules.values():
        for r, k in _ref_counts(body).items():
            uses[r] += k
    recursive = set()
    for comp in _sccs(rules):
        if len(comp) > 1 or comp[0] in refs(rules[comp[0]]):
            recursive.update(comp)
    # 1. non-recursive rules: expand bottom-up with a memo (each body is built once)
    memo: dict[str, ir.Node] = {}
    esize: dict[str, int] = {}

    def inlinable(n: str) -> bool:
        if n == start or n in recursive or n in frames:
            return False
        expand(n)
        return esize[n] <= INLINE_TINY or uses[n] == 1 or esize[n] * uses[n] <= INLINE_BUDGET

    done: dict[int, tuple] = {}  # each shared subtree substituted once

    Seq, Alt = ir.Seq, ir.Alt

    def subst(node):
        got = done.get(id(node))
        if got is None or got[0] is not node:
            t = type(node)
            if isinstance(node, ir.Ref) and node.name in rules and inlinable(node.name):
                out = memo[node.name]
            elif t is Seq or t is Alt:  # _rebuild, with the plain leaves kept without a call
                items = node.items
                new = []
                for it in items:
                    if type(it) in _PLAIN:
                        new.append(it)
                        continue
                    got = done.get(id(it))  # a shared item's memo, read without a call
                    new.append(got[1] if got is not None and got[0] is it else subst(it))
                out = node if all(map(is_, new, items)) else t(tuple(new))
            else:
                out = _rebuild(node, subst)
            got = done[id(node)] = (node, out)
        return got[1]

    def expand(n: str) -> ir.Node:
        if n not in memo:
            memo[n] = subst(rules[n])
            esize[n] = size(memo[n])
        return memo[n]

    kept = {n: (rules[n] if n in recursive else expand(n)) for n in rules
            if n == start or n in recursive or not inlinable(n)}
    kept = {n: subst(b) if n in recursive else b for n, b in kept.items()}
    subst = expand = inlinable = None  # noqa: F841  (the closures' cycles, broken)
    done.clear()
    kept = _inline_cycle_members(kept, start, recursive)
    reachable, todo = {start}, [start]
    while todo:
        for r in refs(kept[todo.pop()]):
            if r not in reachable:
                reachable.add(r)
                todo.append(r)
    return {n: b for n, b in kept.items() if n in reachable}


def _hoist_repeats(rules: dict) -> dict:
    """Bounded repeats of big items call their item as a rule instead of unrolling it.

    `Repeat(item, 0, 50)` unrolls into 50 copies of item's NFA; with the item as a rule each copy
    is one call edge.  Likewise the big labels of a big ir.Automaton (a JSON-escaped `\\S` on
    thousands of edges of a length product): one rule per distinct label, called by every edge.
    Only items whose leading rules cannot reach the repeat's own rule are hoisted, so no new
    left recursion can appear."""
    out, count = dict(rules), [0]
    graph = {n: refs(b) & rules.keys() for n, b in rules.items()}
    nullable = _nullable_rules(rules)

    def reaches(src: str, dst: str) -> bool:
        seen, todo = {src}, [src]
        while todo:
            for r in graph.get(todo.pop(), ()):
                if r == dst:
                    return True
                if r not in seen:
                    seen.add(r)
                    todo.append(r)
        return src == dst

    def visitor(owner: str):
        seen: dict[int, tuple] = {}  # each shared subtree visited once per owner
        hoisted: dict[int, tuple] = {}

        def visit(node):  # the memo inline, not a wrapper: deep schemas need every stack frame
            got = seen.get(id(node))
            if got is not None and got[0] is node:
                return got[1]
            if size(node) <= HOIST_LIMIT:  # nothing inside is big enough to hoist
                return node
            if isinstance(node, ir.Repeat) and node.max is not None:
                item = visit(node.item)
                n = size(item)
                if n >= HOIST_ITEM and n * node.max > HOIST_LIMIT and \
                        not any(reaches(r, owner) for r in _lead(item, nullable)[0]):
                    count[0] += 1
                    name = f"{owner}~item{count[0]}"
                    out[name] = item
                    res = ir.Repeat(ir.Ref(name), node.min, node.max)
                else:
                    res = node if item is node.item else ir.Repeat(item, node.min, node.max)
            elif isinstance(node, ir.Automaton) and size(node) > HOIST_LIMIT:
                res = ir.Automaton(node.start, node.finals, tuple((q, hoist(label), r) for q, label, r in node.edges))
            else:
                res = _rebuild(node, visit)
            seen[id(node)] = (node, res)
            return res

        def hoist(label):
            got = hoisted.get(id(label))
            if got is None or got[0] is not label:
                if size(label) < HOIST_ITEM or any(reaches(x, owner) for x in _lead(label, nullable)[0]):
                    ref = visit(label)
                else:
                    count[0] += 1
                    name = f"{owner}~label{count[0]}"
                    out[name] = visit(label)
                    ref = ir.Ref(name)
                got = hoisted[id(label)] = (label, ref)
            return got[1]

        def close() -> None:  # the closures' cycles, broken (freed without the cyclic GC)
            nonlocal visit, hoist
            visit = hoist = None

        return visit, close

    for name, body in rules.items():
        visit, close = visitor(name)
        out[name] = visit(body)
        close()
    return out


def prepare(grammar: ir.Grammar) -> dict[str, ir.Node]:
    """The kept rules (start first), ready for automaton construction; see the module doc.

    The size / reference memos live while some prepare() runs: emptied by the last one out, they
    never keep a compiled grammar's IR alive (nor make the cyclic GC walk it) after its compile."""
    global _memo_users
    with _memo_lock:
        _memo_users += 1
    try:
        return _prepare(grammar)
    finally:
        with _memo_lock:
            _memo_users -= 1
            if _memo_users == 0:
                _COUNTS.clear()
                _SIZES.clear()


def _prepare(grammar: ir.Grammar) -> dict[str, ir.Node]:
    rules = _resolve_shared(grammar.rules)
    for name, body in rules.items():
        # (not `refs - rules.keys()`: a set minus a keys view walks every key, once per rule)
        missing = [r for r in _ref_counts(body) if r not in rules]
        if missing:
            raise GrammarError(f"rule {name!r} refers to undefined rule(s) {sorted(missing)}")
    good = _productive(rules)
    if grammar.start not in good:
        raise GrammarError(f"the grammar matches nothing (rule {grammar.start!r} is unproductive)")
    bad = rules.keys() - good
    if bad:  # (usually none: then there is nothing to replace)
        nothing, close = _leaf_mapper(lambda n: ir.NOTHING if isinstance(n, ir.Ref) and n.name in bad else n)
        rules = {n: nothing(b) if not refs(b).isdisjoint(bad) else b for n, b in rules.items() if n in good}
        close()
    rules = {n: _eliminate_direct_left_recursion(n, b) for n, b in rules.items()}
    rules = _inline(rules, grammar.start, frozenset(grammar.frames))
    rules = _hoist_repeats(rules)
    nullable = _nullable_rules(rules)
    rules = {n: _eliminate_direct_left_recursion(n, b, nullable) for n, b in rules.items()}
    _check_left_recursion(rules, nullable)  # (the rewrite keeps every rule's language, so which
    # rules derive the empty string too)
    return {grammar.start: rules[grammar.start], **rules}
