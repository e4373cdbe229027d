"""IAM in the sandbox's moto servers, enforced as AWS enforces it.

moto authorises a request against its caller's identity policies once
`INITIAL_NO_AUTH_ACTION_COUNT` requests have gone by (here: from the first). Each moto server is
its own process with its own IAM, so every server gets the same principals at start-up, with the
same keys (`install`). What moto leaves out is added here, in the server's process (`enforce`):

- the resource of a request to a service other than S3 and IAM (moto checks those against "*",
  so no policy naming a table, topic, health check or service would ever allow them);
- the S3 actions moto does not name (GetBucketEncryption is `s3:GetEncryptionConfiguration`, not
  `s3:ListBucket`; replication, Object Lock and a version's HEAD likewise);
- a bucket policy's grant: in one account a bucket policy naming a principal grants it what it
  says, unless the principal's own policies deny it (moto reads identity policies only);
- a denial naming the principal, the action and the resource, as AWS's own message does;
- a record of which principal was allowed which action on which resource
  (`GET /_mldr/authorized`), so tests hold a role's policy to what the runbooks use.

Principals: `admin` (full access; its keys are the SDK placeholder `testing`, which the example
pipeline, the drill's client load and the sandbox's own processes use), `dr-operator` (an IAM
user carrying the DR operator role's policy as infra/ declares it, applied once the resources it
names exist: `mldr.sandbox.declared`) and one per dataset's replication role, named as the role
(`mldr-replication-<dataset>`: an IAM user carrying that role's declared policy, which the
replicator copies with, as S3 replicates with the rule's role).

A replicator's request (`x-mldr-replication: true`) is authorised as S3 authorises replication:
reading the source version is `s3:GetObjectVersionForReplication`, writing the replica
`s3:ReplicateObject`, a delete marker `s3:ReplicateDelete` (`REPLICATION_ACTIONS`).
"""

from __future__ import annotations

import json
import re
import secrets
import string
import threading
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any
from xml.sax.saxutils import escape

ACCOUNT_ID = "123456789012"
ADMIN = "admin"
OPERATOR = "dr-operator"
#: The keys every sandbox process and test client used before IAM was enforced: the admin's.
ADMIN_KEYS = ("testing", "testing")
ADMIN_POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
#: moto names an action by the service's signing name; IAM by its own prefix where they differ.
IAM_PREFIXES = {"monitoring": "cloudwatch"}
#: Services answering in JSON: a denial is `AccessDeniedException` in a JSON body, as AWS's.
JSON_SERVICES = frozenset({"dynamodb", "ecs", "kms", "logs"})
#: Set to 1 in a moto server's environment: denials are recorded, not enforced (`enforce`).
AUDIT_ENV = "MLDR_SANDBOX_IAM_AUDIT"
#: The inline policy holding what infra/ declares for a principal.
POLICY_NAME = "declared"
#: What S3 authorises a replication role's reads and writes as (the replicator marks its requests).
REPLICATION_ACTIONS = {
    "s3:GetObject": "s3:GetObjectVersionForReplication",
    "s3:GetObjectVersion": "s3:GetObjectVersionForReplication",
    "s3:PutObject": "s3:ReplicateObject",
    "s3:DeleteObject": "s3:ReplicateDelete",
}
REPLICATION_HEADER = "x-mldr-replication"


def replication_principal(dataset: str) -> str:
    """The principal playing dataset's replication role: named as infra/ names the role's purpose."""
    return f"mldr-replication-{dataset}"


@dataclass(frozen=True)
class Principal:
    name: str
    access_key_id: str
    secret_access_key: str

    @property
    def arn(self) -> str:
        return f"arn:aws:iam::{ACCOUNT_ID}:user/{self.name}"

    def as_status(self) -> dict[str, str]:
        return {**asdict(self), "arn": self.arn}


def _fresh(name: str) -> Principal:
    """A principal with fresh keys, shaped like AWS's."""
    alphabet = string.ascii_uppercase + string.digits
    key = "AKIA" + "".join(secrets.choice(alphabet) for _ in range(16))
    return Principal(name, key, secrets.token_urlsafe(30)[:40])


def new_principals(datasets: tuple[str, ...] = ()) -> dict[str, Principal]:
    """The sandbox's principals: admin, the DR operator and each dataset's replication role."""
    principals = {ADMIN: Principal(ADMIN, *ADMIN_KEYS), OPERATOR: _fresh(OPERATOR)}
    for dataset in datasets:
        name = replication_principal(dataset)
        principals[name] = _fresh(name)
    return principals


def principals_from_json(data: dict[str, Any]) -> dict[str, Principal]:
    return {name: Principal(**{k: v for k, v in p.items() if k != "arn"}) for name, p in data.items()}


# --- in a moto server's process ------------------------------------------------------------


def install(principals: dict[str, Principal]) -> None:
    """Create the principals as IAM users with their keys, admin with full access; the others get
    their policies through the IAM API once provisioning has made what they name."""
    from moto.iam.models import iam_backends

    backend = iam_backends[ACCOUNT_ID]["aws"]
    for principal in principals.values():
        backend.create_user("us-east-1", principal.name)
        key = backend.create_access_key(principal.name)
        # moto makes random keys; every server must accept the same ones
        key.access_key_id = principal.access_key_id
        key.secret_access_key = principal.secret_access_key
        if principal.name == ADMIN:
            backend.put_user_policy(ADMIN, POLICY_NAME, json.dumps(ADMIN_POLICY))


#: (principal ARN, action, resource) -> how many requests were allowed (denied)
AUTHORIZED: Counter[tuple[str, str, str]] = Counter()
DENIED: Counter[tuple[str, str, str]] = Counter()
_authorized_lock = threading.Lock()
_audit_only = False

#: S3 requests moto names wrongly (by query parameter, the first present wins) - IAM's names.
_S3_BUCKET_ACTIONS = {
    # HeadBucket is no IAM action: S3 authorises it as s3:ListBucket
    "HEAD": {"DEFAULT": "ListBucket"},
    "GET": {
        "encryption": "GetEncryptionConfiguration",
        "replication": "GetReplicationConfiguration",
        "object-lock": "GetBucketObjectLockConfiguration",
        "ownershipControls": "GetBucketOwnershipControls",
    },
    "PUT": {
        "encryption": "PutEncryptionConfiguration",
        "replication": "PutReplicationConfiguration",
        "object-lock": "PutBucketObjectLockConfiguration",
        "ownershipControls": "PutBucketOwnershipControls",
    },
    "DELETE": {
        "encryption": "PutEncryptionConfiguration",
        "replication": "PutReplicationConfiguration",
        "ownershipControls": "PutBucketOwnershipControls",
    },
}
_S3_KEY_ACTIONS = {
    "GET": {"attributes": "GetObjectAttributes"},
    "HEAD": {"versionId": "GetObjectVersion"},
}


def _complete_s3_action_names() -> None:
    from moto.s3.responses import ACTION_MAP

    for kind, table in (("BUCKET", _S3_BUCKET_ACTIONS), ("KEY", _S3_KEY_ACTIONS)):
        for method, names in table.items():
            # ours first: moto takes the last match, so they go after its own entries
            current = ACTION_MAP[kind].setdefault(method, {"DEFAULT": ""})
            for parameter, action in names.items():
                current.pop(parameter, None)
                current[parameter] = action


_ROUTE53_PATH = re.compile(r"/20\d\d-\d\d-\d\d/(?:tags/)?(hostedzone|healthcheck|change)/([^/?]+)")


def resource_of(service: str, region: str, body: dict[str, Any], path: str) -> str:
    """The ARN a request to `service` acts on, as IAM sees it; "*" when it names none."""

    def first(*names: str) -> str | None:
        for name in names:
            value = body.get(name)
            if isinstance(value, list):
                value = value[0] if value else None
            if isinstance(value, str) and value:
                return value
        return None

    if service == "dynamodb":
        table = first("TableName")
        return f"arn:aws:dynamodb:{region}:{ACCOUNT_ID}:table/{table}" if table else "*"
    if service == "sns":
        return first("TopicArn", "TargetArn") or "*"
    if service == "ecs":
        found = first("service", "services")
        if not found:
            return "*"
        return found if found.startswith("arn:") else f"arn:aws:ecs:{region}:{ACCOUNT_ID}:service/{found}"
    if service == "kms":
        key = first("KeyId")
        if not key:
            return "*"
        return key if key.startswith("arn:") else f"arn:aws:kms:{region}:{ACCOUNT_ID}:key/{key}"
    if service == "route53":
        match = _ROUTE53_PATH.search(path)
        return f"arn:aws:route53:::{match.group(1)}/{match.group(2)}" if match else "*"
    return "*"


def _body(response: Any) -> dict[str, Any]:
    """A request's parameters as moto parsed them (JSON body, query string or form)."""
    for name in ("params", "body", "querystring"):
        value = getattr(response, name, None)
        if isinstance(value, dict) and value:
            return value
    raw = getattr(response, "body", None)
    if isinstance(raw, bytes | str) and raw:
        try:
            data = json.loads(raw)
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}
    return {}


def _delete_objects_batch(action: str, resource: str, body: Any) -> list[tuple[str, str]]:
    """[(action, object ARN)] of a DeleteObjects request, as S3 authorises it: `s3:DeleteObject` on
    each key, `s3:DeleteObjectVersion` on each key named with a version; [] for anything else."""
    if action != "s3:DeleteObject" or "/" in resource.removeprefix("arn:aws:s3:::"):
        return []
    raw = body.encode() if isinstance(body, str) else body
    if not isinstance(raw, bytes) or b"<Delete" not in raw:
        return []
    from xml.etree import ElementTree

    checks = []
    for element in ElementTree.fromstring(raw).iter():
        if element.tag.rsplit("}", 1)[-1] != "Object":
            continue
        fields = {child.tag.rsplit("}", 1)[-1]: child.text or "" for child in element}
        versioned = "s3:DeleteObjectVersion" if fields.get("VersionId") else "s3:DeleteObject"
        checks.append((versioned, f"{resource}/{fields.get('Key', '')}"))
    return checks


def _replicating(headers: Any) -> bool:
    """Is this the replicator's request (`x-mldr-replication: true`, any header case)?"""
    return any(str(k).lower() == REPLICATION_HEADER and str(v).lower() == "true" for k, v in headers.items())


def _scope(headers: Any) -> tuple[str, str]:
    """(region, service) from the request's SigV4 credential scope."""
    auth = str(headers.get("Authorization", ""))
    scope = auth.partition("Credential=")[2].partition(",")[0].split("/")
    return (scope[2], scope[3]) if len(scope) > 3 else ("us-east-1", "")


def _granted_by_bucket_policy(caller: Any, action: str, resource: str) -> bool:
    """In one account a bucket policy alone grants what it names to a principal it names (moto
    reads only identity policies) - unless the caller's own policies deny it explicitly."""
    from moto.iam.access_control import IAMPolicy, PermissionResult

    if not resource.startswith("arn:aws:s3:::") or not action.startswith("s3:"):
        return False
    from mldr.sandbox import crossregion

    bucket = crossregion.store().buckets.get(resource.removeprefix("arn:aws:s3:::").split("/", 1)[0])
    if bucket is None or not bucket.policy:
        return False
    statements = json.loads(bucket.policy).get("Statement", [])
    grants = [
        s
        for s in (statements if isinstance(statements, list) else [statements])
        if s.get("Effect") == "Allow" and not s.get("Condition") and _names(s.get("Principal"), caller.arn)
    ]
    if not grants:
        return False
    policy = IAMPolicy(
        json.dumps({"Version": "2012-10-17", "Statement": [{**g, "Principal": None} for g in grants]})
    )
    if policy.is_action_permitted(action, resource) != PermissionResult.PERMITTED:
        return False
    own = [IAMPolicy(p).is_action_permitted(action, resource) for p in caller.collect_policies()]
    return PermissionResult.DENIED not in own


def _names(principal: Any, arn: str) -> bool:
    """Does a bucket policy's `Principal` name this caller (its ARN, or anyone)?"""
    if principal == "*":
        return True
    listed = principal.get("AWS") if isinstance(principal, dict) else None
    return listed == "*" or listed == arn or (isinstance(listed, list) and arn in listed)


def enforce(*, audit_only: bool = False) -> None:
    """Authorise every request from the first one on, as described in the module docstring.

    `audit_only`: record what would be denied (`GET /_mldr/authorized`) and let it through - for a
    developer listing every permission a change needs in one run, never for tests.
    """
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.core.exceptions import AccessDeniedError, JsonRESTError, ServiceException
    from moto.iam.access_control import IAMRequest, IAMRequestBase, S3IAMRequest
    from moto.s3.exceptions import S3ClientError
    from werkzeug.exceptions import HTTPException

    global _audit_only
    _audit_only = audit_only
    settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
    _complete_s3_action_names()

    normal = ActionAuthenticatorMixin._authenticate_and_authorize_normal_action

    def authorize_normal(self: Any, resource: str = "*") -> None:
        if resource == "*":
            region, service = _scope(self.headers)
            resource = resource_of(service, region, _body(self), getattr(self, "path", "") or "")
        normal(self, resource)

    ActionAuthenticatorMixin._authenticate_and_authorize_normal_action = authorize_normal  # type: ignore[method-assign]

    checked = IAMRequestBase.check_action_permitted

    def check_action_permitted(self: Any, resource: str) -> None:
        service, _, name = self._action.partition(":")
        self._action = f"{IAM_PREFIXES.get(service, service)}:{name}"
        if _replicating(self._headers):
            self._action = REPLICATION_ACTIONS.get(self._action, self._action)
        batch = _delete_objects_batch(self._action, resource, getattr(self, "_body", b""))
        if batch:  # S3 authorises DeleteObjects key by key; moto once, on the bucket
            for action, key_resource in batch:
                self._action = action
                check_one(self, key_resource)
            return
        check_one(self, resource)

    def check_one(self: Any, resource: str) -> None:
        self._mldr_resource = resource
        request = (self._access_key.arn, self._action, resource)
        try:
            checked(self, resource)
        except (HTTPException, ServiceException):  # moto's denials (S3's are ServiceExceptions)
            if not _granted_by_bucket_policy(self._access_key, self._action, resource):
                with _authorized_lock:
                    DENIED[request] += 1
                if not audit_only:
                    raise
        with _authorized_lock:
            AUTHORIZED[request] += 1

    IAMRequestBase.check_action_permitted = check_action_permitted  # type: ignore[method-assign]

    def denied(self: Any) -> str:
        """AWS's words: "... not authorized to perform: <action> on resource: <arn> because ..."."""
        action, resource = self._action, getattr(self, "_mldr_resource", "*")
        return f"{action} on resource: {resource} because no identity-based policy allows the {action} action"

    def deny(self: Any) -> None:
        message = f"User: {self._access_key.arn} is not authorized to perform: {denied(self)}"
        if self._service in JSON_SERVICES:
            error: Any = JsonRESTError("AccessDeniedException", message)
        else:
            error = AccessDeniedError(user_arn=self._access_key.arn, action=denied(self))
            # <ErrorResponse><Error>, as Route 53, SNS and IAM answer (moto nests it in <Errors>,
            # where the SDK finds no code)
            error.description = (
                "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>"
                f"<Message>{escape(message)}</Message></Error></ErrorResponse>"
            )
        error.code = 403
        raise error

    def deny_s3(self: Any) -> None:
        raise S3ClientError(
            "AccessDenied", f"User: {self._access_key.arn} is not authorized to perform: {denied(self)}"
        )

    # The access key names the principal, which is what is tested here. moto recomputes some
    # services' signatures over a different payload than the SDK signed (Route 53's GETs), and
    # would refuse correct requests; the SDK's signing and mldr's own signer have their own tests.
    IAMRequestBase.check_signature = lambda self: None  # type: ignore[method-assign]
    IAMRequest._raise_access_denied = deny  # type: ignore[method-assign]
    S3IAMRequest._raise_access_denied = deny_s3  # type: ignore[method-assign]


def refusal(headers: Any, action: str, resource: str) -> str | None:
    """Authorise a request the sandbox answers itself (moto's check never sees it): None if the
    caller's identity policies allow `action` on `resource`, else AWS's denial message. Decided
    and recorded as moto's checks are; nothing is refused while IAM is not enforced."""
    from moto import settings
    from moto.iam.access_control import (
        CreateAccessKeyFailure,
        IAMPolicy,
        IAMUserAccessKey,
        PermissionResult,
    )

    if settings.INITIAL_NO_AUTH_ACTION_COUNT != 0:
        return None
    key_id = str(headers.get("Authorization", "")).partition("Credential=")[2].partition("/")[0]
    try:
        caller = IAMUserAccessKey(ACCOUNT_ID, "aws", key_id, {})
    except CreateAccessKeyFailure:
        return f"The AWS access key id {key_id!r} does not exist in our records."
    results = [IAMPolicy(p).is_action_permitted(action, resource) for p in caller.collect_policies()]
    allowed = PermissionResult.PERMITTED in results and PermissionResult.DENIED not in results
    with _authorized_lock:
        (AUTHORIZED if allowed or _audit_only else DENIED)[(caller.arn, action, resource)] += 1
    if allowed or _audit_only:
        return None
    return (
        f"User: {caller.arn} is not authorized to perform: {action} on resource: {resource} "
        f"because no identity-based policy allows the {action} action"
    )


def authorized() -> dict[str, list[dict[str, Any]]]:
    """What each principal was allowed, and denied, since the server started."""
    with _authorized_lock:
        return {
            outcome: [
                {"principal": p, "action": a, "resource": r, "count": n}
                for (p, a, r), n in sorted(seen.items())
            ]
            for outcome, seen in (("authorized", AUTHORIZED), ("denied", DENIED))
        }
