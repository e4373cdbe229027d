"""The library's layering, read from its source (DESIGN.md, "Layout"): arrows point down only.

- `checks` never import `actions` or `runbooks`; `actions` never import `runbooks`;
- only `cloud/aws`, the sandbox and the example ML workload (`ml/`, which plays a user's own
  pipeline) make AWS clients: everything else asks `mldr.cloud`;
- `reports` publishes nothing (no metrics, no alerts): a check's caller does.

The rules are checked on the syntax tree (imports, calls), not by running anything, so they hold
for code paths no test reaches, and they are checked here on small trees that break them, so the
checker itself is known to fail when it should.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

PACKAGE = Path(__file__).parents[2] / "plugins" / "mldr"

#: Where AWS clients may be made (paths relative to the package).
CLIENT_MAKERS = ("cloud/aws/", "sandbox/", "ml/")
#: Services mldr or its workload talks to: a `.client("<service>", ...)` call makes a client.
AWS_SERVICES = frozenset(
    {"s3", "dynamodb", "route53", "ecs", "sns", "sqs", "cloudwatch", "kms", "iam", "sts", "autoscaling"}
)
#: Calls that make a client or a session whatever their arguments.
CLIENT_CALLS = frozenset({"create_client", "Session"})
#: Modules that publish metrics or alerts.
PUBLISHERS = (
    "mldr.checks.metrics",
    "mldr.cloud.telemetry",
    "mldr.runbooks.notify",
    "mldr.cloud.aws.cloudwatch",
)
PUBLISHING_CALLS = frozenset({"publish", "put_metric_data", "notify"})


@dataclass(frozen=True)
class Violation:
    module: str  # path relative to the package
    rule: str  # "layer" | "client" | "publishes"
    detail: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.module, self.rule)


def _imports(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, module) for every absolute import, `from a import b` also as `a.b`."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
            out += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return out


def _called_name(node: ast.Call) -> str | None:
    if isinstance(node.func, ast.Attribute):
        return node.func.attr
    if isinstance(node.func, ast.Name):
        return node.func.id
    return None


def _makes_client(node: ast.Call) -> bool:
    name = _called_name(node)
    if name in CLIENT_CALLS:
        return True
    if name in {"client", "resource"} and node.args:
        first = node.args[0]
        return isinstance(first, ast.Constant) and first.value in AWS_SERVICES
    return False


def violations(package: Path) -> list[Violation]:
    found = []
    for path in sorted(package.rglob("*.py")):
        module = path.relative_to(package).as_posix()
        layer = module.split("/")[0] if "/" in module else module.removesuffix(".py")
        tree = ast.parse(path.read_text(), filename=str(path))
        imports = _imports(tree)
        forbidden = {
            "checks": ("mldr.actions", "mldr.runbooks"),
            "actions": ("mldr.runbooks",),
        }.get(layer, ())
        for line, name in imports:
            if name.startswith(forbidden):
                found.append(Violation(module, "layer", f"line {line}: a {layer} module imports {name}"))
        calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)]
        if not module.startswith(CLIENT_MAKERS):
            for call in calls:
                if _makes_client(call):
                    found.append(Violation(module, "client", f"line {call.lineno}: makes an AWS client"))
        if layer == "reports":
            for line, name in imports:
                if name.startswith(PUBLISHERS):
                    found.append(Violation(module, "publishes", f"line {line}: imports {name}"))
            for call in calls:
                if _called_name(call) in PUBLISHING_CALLS:
                    found.append(
                        Violation(module, "publishes", f"line {call.lineno}: calls {_called_name(call)}")
                    )
    return found


def test_the_library_keeps_its_layering() -> None:
    found = violations(PACKAGE)
    broken = [f"{v.module}: {v.detail}" for v in found]
    assert not broken, "layering broken:\n" + "\n".join(broken)


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_the_checker_finds_each_kind_of_break(tmp_path: Path) -> None:
    package = _tree(
        tmp_path,
        {
            "checks/bad.py": "from mldr.actions.write_fence import fence\nimport mldr.runbooks.engine\n",
            "actions/bad.py": "from mldr.runbooks import failover\n",
            "runbooks/bad.py": "def f(factory):\n    return factory.client('s3', 'us-east-1')\n",
            "checks/session.py": "import botocore.session\ns = botocore.session.Session()\n",
            "reports.py": "from mldr.checks.metrics import publish\n\ndef keep(f):\n    publish(f)\n",
            # allowed: the layers below, the cloud implementation, the sandbox and the workload
            "checks/ok.py": "from mldr.cloud import Cloud\nfrom mldr.checks.listing import merge\n",
            "runbooks/ok.py": "from mldr.actions import write_fence\nfrom mldr.checks import health\n",
            "cloud/aws/s3.py": "def c(f):\n    return f.client('s3', 'us-east-1')\n",
            "sandbox/seed.py": "import boto3\nboto3.client('s3')\n",
            "ml/pipeline.py": "def c(f):\n    return f.client('s3', 'us-east-1')\n",
            "actions/ok.py": "def c(http):\n    return http.client('not-a-service')\n",
        },
    )
    found = {(v.module, v.rule) for v in violations(package)}
    assert found == {
        ("checks/bad.py", "layer"),
        ("actions/bad.py", "layer"),
        ("runbooks/bad.py", "client"),
        ("checks/session.py", "client"),
        ("reports.py", "publishes"),
    }
    details = [v.detail for v in violations(package) if v.module == "checks/bad.py"]
    assert any("mldr.actions.write_fence" in d for d in details)
    assert any("mldr.runbooks.engine" in d for d in details)
