"""The read-only IAM and STS calls the SageMaker SDK makes before it acts, answered at the service's endpoint.

SDK v3 validates a role before ``Pipeline.upsert``/``create`` (``sagemaker.core.helper.iam_role_resolver``):
``iam:GetRole`` to read the role's trust policy, ``iam:SimulatePrincipalPolicy`` for the permissions a role type
needs, and ``sts:GetCallerIdentity`` when no role is given. The service has no IAM (any credentials, no
policies), so it answers as an account where every role exists, trusts SageMaker and is allowed what is
simulated, and the caller is an assumed role of that account. Without these answers the SDK would ask moto's
empty IAM and refuse every role (``RoleValidationError``) unless ``SAGEMAKER_VALIDATE_ROLE=false`` is set.

Both services use the query protocol: a form-encoded POST with ``Action=...`` whose SigV4 credential scope
names ``iam`` or ``sts``; answers are XML shaped by botocore's own output shapes. Every other IAM or STS
action goes on to moto.
"""

from __future__ import annotations

import functools
import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, quote
from xml.sax.saxutils import escape

ACCOUNT = "000000000000"
# The caller every request is from: an assumed role, as on a notebook or an instance, so that an SDK call
# without a role resolves one (GetCallerIdentity -> GetRole of that role).
CALLER_ROLE = "AirsageEmulatedCaller"
TRUSTED_SERVICE = "sagemaker.amazonaws.com"
# When every role was made: a fixed instant, so that answers do not depend on when they were asked.
_CREATED = datetime(2020, 12, 1, tzinfo=UTC)
_SCOPE = re.compile(r"Credential=[^/,]+/\d{8}/[^/,]+/(iam|sts)/aws4_request")
ANSWERED = {"iam": ("GetRole", "SimulatePrincipalPolicy"), "sts": ("GetCallerIdentity",)}


def query_service(environ: dict) -> str | None:
    """``iam`` or ``sts`` for a POST signed for one of them, else None."""
    if environ.get("REQUEST_METHOD") != "POST":
        return None
    match = _SCOPE.search(environ.get("HTTP_AUTHORIZATION") or "")
    return match.group(1) if match else None


_ACCESS_KEY = re.compile(r"Credential=([^/,\s]+)/")


def caller_context(environ: dict) -> dict:
    """The ``UserContext`` (``LastModifiedBy``, ``CreatedBy``) of a request: the assumed role every caller
    is, its session named by the request's access key id (so two callers with different keys are told
    apart), ``SourceIdentity`` that key id."""
    match = _ACCESS_KEY.search(environ.get("HTTP_AUTHORIZATION") or "")
    key = match.group(1) if match else "anonymous"
    return {"IamIdentity": {"Arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{CALLER_ROLE}/{key}",
                            "PrincipalId": f"AROAAIRSAGEEMULATED:{key}", "SourceIdentity": key}}


def parse_form(body: bytes) -> dict[str, str]:
    """A query-protocol body as ``{name: value}`` (``ActionNames.member.1`` and the like stay flat)."""
    return {key: values[-1] for key, values in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}


def answers(service: str, form: dict[str, str]) -> bool:
    """True when this module answers the request (``Action`` is one of :data:`ANSWERED`)."""
    return form.get("Action") in ANSWERED.get(service, ())


def handle(service: str, form: dict[str, str]) -> tuple[int, bytes]:
    """``(HTTP status, XML body)`` of an IAM or STS action of :data:`ANSWERED`."""
    action = form["Action"]
    if action == "GetRole":
        name = form.get("RoleName", "")
        if not re.fullmatch(r"[\w+=,.@-]{1,64}", name):
            return _error(service, "ValidationError", f"1 validation error detected: Value '{name}' at 'roleName' "
                                                      "failed to satisfy constraint: Member must satisfy regular "
                                                      r"expression pattern: [\w+=,.@-]+")
        result = {"Role": _role(name)}
    elif action == "SimulatePrincipalPolicy":
        names = [value for key, value in sorted(form.items(), key=lambda kv: _member_index(kv[0]))
                 if key.startswith("ActionNames.member.")]
        result = {"EvaluationResults": [{"EvalActionName": name, "EvalResourceName": "*", "EvalDecision": "allowed",
                                         "MatchedStatements": [], "MissingContextValues": []} for name in names],
                  "IsTruncated": False}
    else:  # GetCallerIdentity
        result = {"UserId": f"AROAAIRSAGEEMULATED:{CALLER_ROLE}", "Account": ACCOUNT,
                  "Arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{CALLER_ROLE}/airsage"}
    return 200, _response(service, action, result)


def _member_index(key: str) -> int:
    tail = key.rsplit(".", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def _role(name: str) -> dict:
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": TRUSTED_SERVICE}, "Action": "sts:AssumeRole"}]}
    return {
        "Path": "/", "RoleName": name, "RoleId": "AROA" + uuid.uuid5(uuid.NAMESPACE_URL, name).hex[:17].upper(),
        "Arn": f"arn:aws:iam::{ACCOUNT}:role/{name}", "CreateDate": _CREATED,
        # IAM returns the trust policy URL-encoded, as botocore hands it on.
        "AssumeRolePolicyDocument": quote(json.dumps(trust)), "MaxSessionDuration": 3600,
    }


@functools.cache
def _model(service: str):
    import botocore.session

    return botocore.session.get_session().get_service_model(service)


def _response(service: str, action: str, result: dict) -> bytes:
    model = _model(service)
    shape = model.operation_model(action).output_shape
    namespace = model.metadata["xmlNamespace"]
    inner = "".join(_xml(member, name, result[name]) for name, member in shape.members.items()
                    if result.get(name) is not None)
    wrapper = shape.serialization["resultWrapper"]
    return (f'<{action}Response xmlns="{namespace}"><{wrapper}>{inner}</{wrapper}>'
            f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata></{action}Response>").encode()


def _xml(shape, name: str, value: Any) -> str:
    kind = shape.type_name
    if kind == "structure":
        body = "".join(_xml(member, key, value[key]) for key, member in shape.members.items()
                       if value.get(key) is not None)
    elif kind == "list":
        body = "".join(_xml(shape.member, "member", item) for item in value)
    elif kind == "timestamp":
        body = value.strftime("%Y-%m-%dT%H:%M:%SZ")
    elif kind == "boolean":
        body = "true" if value else "false"
    else:
        body = escape(str(value))
    return f"<{name}>{body}</{name}>"


def _error(service: str, code: str, message: str, status: int = 400) -> tuple[int, bytes]:
    namespace = _model(service).metadata["xmlNamespace"]
    return status, (f'<ErrorResponse xmlns="{namespace}"><Error><Type>Sender</Type><Code>{escape(code)}</Code>'
                    f"<Message>{escape(message)}</Message></Error><RequestId>{uuid.uuid4()}</RequestId>"
                    "</ErrorResponse>").encode()
