"""Instantiation: a root jobnet template becomes the runtime tree of one execution.

Like Tengine's generation, expansions are inlined (the referenced root template's children,
edges and finally are copied in place of the expansion) and every copied vertex gets a fresh id.
The walk is iterative and carries name paths, ancestor lists and inherited options down from the
parent, so the cost is linear in the size of the tree and deep nesting cannot overflow the stack.
"""

from __future__ import annotations

from collections.abc import Callable

from . import nodes
from .execution import FINALLY, HADOOP_JOB, JOB, JOBNET, MAP_PHASE, REDUCE_PHASE, Execution, Vertex
from .graph import plan_edges
from .nodes import Definitions, Node

# Tengine's fixed box inside every hadoop_job: two phase jobnets started in parallel.
HADOOP_PHASES = (("Map", MAP_PHASE), ("Reduce", REDUCE_PHASE))


class InstantiationError(ValueError):
    """The template cannot become an execution (unknown root, expansion loop or missing root,
    an edge to a child that does not exist). Nothing is returned, so nothing is half-made."""


# One pending vertex: its template node (None for a Map/Reduce phase), its pre-assigned id, its
# parent vertex (None for the root), the chain of root templates expanded to reach it, and for a
# phase its (name, kind).
_Task = tuple[Node | None, str, Vertex | None, tuple[str, ...], tuple[str, str] | None]


def instantiate(defs: Definitions, root_name: str, *, execution_id: str | None = None,
                new_id: Callable[[], str] = nodes.new_id, estimated_time: str = "") -> Execution:
    """Copy root template `root_name` (expansions inlined) into a new Execution with fresh ids
    from `new_id`. Raises InstantiationError for an unknown root, an expansion loop, an expansion
    of a missing root, or an edge that names no child."""
    root_node = defs.root(root_name)
    if root_node is None:
        known = ", ".join(sorted(n.name for n in defs.roots)) or "none"
        raise InstantiationError(f"no root jobnet named {root_name!r} (known: {known})")
    exec_id = execution_id if execution_id is not None else new_id()

    vertices: dict[str, Vertex] = {}
    # Popping from the end of the stack and pushing children in reverse keeps `vertices` in
    # tree order (depth first, declaration order), which jobs() and the printers rely on.
    stack: list[_Task] = [(root_node, new_id(), None, (root_node.name,), None)]
    while stack:
        node, vertex_id, parent, chain, phase = stack.pop()
        if phase is not None:
            vertex = _phase_vertex(vertex_id, phase, parent)
            vertices[vertex_id] = vertex
            continue
        assert node is not None
        content, chain = _content_of(defs, node, parent, chain)
        vertex = _vertex(node, content, vertex_id, parent)
        vertices[vertex_id] = vertex
        if node.kind == nodes.HADOOP_JOB:
            tasks = _hadoop_box(vertex, new_id)
        else:
            tasks = _children(vertex, content, chain, new_id)
        stack.extend(reversed(tasks))
    root = next(iter(vertices.values()))
    return Execution(id=exec_id, root=root, vertices=vertices, estimated_time=estimated_time)


def _content_of(defs: Definitions, node: Node, parent: Vertex | None,
                chain: tuple[str, ...]) -> tuple[Node, tuple[str, ...]]:
    """The template node whose children, edges and options a vertex copies: the node itself, or
    for an expansion the referenced root template, with the expansion chain extended."""
    if node.kind != nodes.EXPANSION:
        return node, chain
    at = f"{parent.name_path if parent else ''}/{node.name}"
    if node.where.file:
        at = f"{at}, {node.where}"
    if node.name in chain:
        loop = (*chain[chain.index(node.name):], node.name)
        raise InstantiationError(f"expansion loop: {' -> '.join(loop)} (expansion at {at})")
    target = defs.root(node.name)
    if target is None:
        raise InstantiationError(
            f"expansion of missing root jobnet {node.name!r} (expansion at {at})")
    return target, (*chain, node.name)


def _vertex(node: Node, content: Node, vertex_id: str, parent: Vertex | None) -> Vertex:
    """The vertex for `node`; `content` is the referenced root when `node` is an expansion."""
    expansion = node.kind == nodes.EXPANSION
    kind = JOBNET if expansion else node.kind
    name = FINALLY if kind == FINALLY else node.name
    if parent is None:
        name_path, template_ancestors = "/" + name, []
    else:
        name_path = f"{parent.name_path}/{name}"
        # Inside an expansion the template ancestry restarts at the referenced root template.
        template_ancestors = [] if expansion else _template_lineage(parent)
    description = (node.description if expansion and node.description is not None
                   else content.label)

    vertex = Vertex(id=vertex_id, kind=kind, name=name, name_path=name_path,
                    template_id=content.id, template_ancestor_ids=template_ancestors,
                    was_expansion=expansion, parent_id=parent.id if parent else None,
                    script=node.script if node.kind in (JOB, nodes.HADOOP_JOB_RUN) else None,
                    description=description, preparation=_preparation(node, name_path))
    _inherit_options(vertex, content.options, parent)
    return vertex


def _template_lineage(parent: Vertex) -> list[str]:
    """Template ancestors of a child of `parent`: the parent's ancestors and the parent."""
    assert parent.template_id is not None, "Map/Reduce phases have no template and no children"
    return [*parent.template_ancestor_ids, parent.template_id]


def _inherit_options(vertex: Vertex, options: dict, parent: Vertex | None) -> None:
    """Server, credential and killing rules: the vertex's own option, else the nearest runtime
    ancestor's (Node.server_name / Node.killing, evaluated along the runtime tree). An interval
    counts only on the vertex that also sets the signals."""
    vertex.server_name = options.get("server_name", parent.server_name if parent else None)
    vertex.credential_name = options.get("credential_name",
                                         parent.credential_name if parent else None)
    if "killing_signals" in options:
        vertex.killing_signals = list(options["killing_signals"])
        vertex.killing_signal_interval = options.get("killing_signal_interval",
                                                     nodes.DEFAULT_KILLING_SIGNAL_INTERVAL)
    elif parent is not None:
        vertex.killing_signals = list(parent.killing_signals)
        vertex.killing_signal_interval = parent.killing_signal_interval
    else:
        vertex.killing_signals = list(nodes.DEFAULT_KILLING_SIGNALS)
        vertex.killing_signal_interval = nodes.DEFAULT_KILLING_SIGNAL_INTERVAL


def _preparation(node: Node, name_path: str) -> str | None:
    value = node.options.get("preparation")
    if value is None or isinstance(value, str):
        return value
    raise InstantiationError(
        f"preparation of {name_path} ({node.where}) must be a shell snippet string, "
        f"got {type(value).__name__}")


def _children(vertex: Vertex, content: Node, chain: tuple[str, ...],
              new_id: Callable[[], str]) -> list[_Task]:
    """Give each template child of `content` a runtime id, resolve the edges of `content` to
    those ids on `vertex`, and return the children still to be built."""
    tasks: list[_Task] = []
    id_by_name: dict[str, str] = {}
    for child in content.children:
        child_id = new_id()
        vertex.child_ids.append(child_id)
        if child.kind == nodes.FINALLY:
            if vertex.finally_id is None:  # a second finally is a validator error; keep the first
                vertex.finally_id = child_id
        elif child.name in id_by_name:
            raise InstantiationError(
                f"two children named {child.name!r} in {vertex.name_path} ({child.where}): "
                f"edges cannot tell them apart")
        else:
            id_by_name[child.name] = child_id
        tasks.append((child, child_id, vertex, chain, None))
    if not content.children:
        return tasks

    def resolve(name: str) -> str:
        try:
            return id_by_name[name]
        except KeyError:
            raise InstantiationError(
                f"{name!r} is named by boot_jobs or `to` in {vertex.name_path} "
                f"({content.where}) but is not a child there") from None

    plan = plan_edges(content)
    vertex.start_ids = [resolve(n) for n in plan.start]
    vertex.edges = [(resolve(a), resolve(b)) for a, b in plan.edges]
    vertex.end_ids = [resolve(n) for n in plan.end]
    return tasks


def _hadoop_box(vertex: Vertex, new_id: Callable[[], str]) -> list[_Task]:
    """Tengine's fixed box of a hadoop_job: Start -> (Map || Reduce) -> End."""
    tasks: list[_Task] = []
    for phase in HADOOP_PHASES:
        phase_id = new_id()
        vertex.child_ids.append(phase_id)
        tasks.append((None, phase_id, vertex, (), phase))
    vertex.start_ids = list(vertex.child_ids)
    vertex.end_ids = list(vertex.child_ids)
    return tasks


def _phase_vertex(vertex_id: str, phase: tuple[str, str], parent: Vertex | None) -> Vertex:
    assert parent is not None and parent.kind == HADOOP_JOB
    name, kind = phase
    return Vertex(id=vertex_id, kind=kind, name=name, name_path=f"{parent.name_path}/{name}",
                  template_id=None,
                  template_ancestor_ids=_template_lineage(parent),
                  parent_id=parent.id, description=name,
                  server_name=parent.server_name, credential_name=parent.credential_name,
                  killing_signals=list(parent.killing_signals),
                  killing_signal_interval=parent.killing_signal_interval)
