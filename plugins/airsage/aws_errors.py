"""Which AWS errors are permanent, and what the one line about one says: the classification every operator uses.

A permanent error (a missing bucket, access denied, a request AWS refuses as invalid, a resource that does not
exist, credentials AWS does not accept) will be the same at the next try: retrying only delays the failure and
buries the reason under botocore's generic text. It fails the task at once, without Airflow's retries, as
:class:`PermanentAwsError` — an ``AirflowFailException`` that is also the ``ClientError`` botocore would have
raised, so code that inspects ``ClientError`` codes (``describe_pipeline_or_none``, the provider's
``stop_pipeline``) keeps working — with one line naming the service, the call, the resource, the endpoint and
the fix. Throttling, 5xx answers and connection errors are transient: botocore's retries, then Airflow's,
apply as before.

The seam: :func:`classify_errors` registers on a boto3 client's events; the airsage hooks install it on the
clients they create (``SageMakerPipelineHook`` and the ``ArtifactStore``'s S3Hook), so every operator that
reaches AWS through them gets it.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk.exceptions import AirflowFailException
from botocore.exceptions import ClientError

# AWS error codes, by what they mean; botocore keeps them in Error.Code.
MISSING_BUCKET = frozenset({"NoSuchBucket"})
ACCESS_DENIED = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError",
                           "AllAccessDisabled"})
BAD_CREDENTIALS = frozenset({"InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch",
                             "InvalidAccessKeyId", "ExpiredToken", "ExpiredTokenException", "InvalidToken"})
INVALID_REQUEST = frozenset({"ValidationException", "ValidationError", "InvalidParameterValue",
                             "InvalidParameterValueException", "InvalidParameterException", "InvalidArgument",
                             "InvalidBucketName", "MalformedPolicyDocument"})
NOT_FOUND = frozenset({"ResourceNotFound", "ResourceNotFoundException", "NoSuchEntity", "NotFoundException"})
PERMANENT = MISSING_BUCKET | ACCESS_DENIED | BAD_CREDENTIALS | INVALID_REQUEST | NOT_FOUND
# Named in a message: the request members that say which resource a call was about, in this order.
_RESOURCE_MEMBERS = ("Bucket", "Key", "PipelineName", "PipelineExecutionArn", "ModelPackageArn", "ModelPackageName",
                     "ModelPackageGroupName", "ResourceArn", "RoleArn", "RoleName", "TopicArn")
_PARAMS = "airsage_request_params"


class PermanentAwsError(ClientError, AirflowFailException):
    """An AWS error no retry can fix: fails the task at once, with one line saying what and how to fix it."""

    def __init__(self, error_response: dict, operation_name: str, line: str):
        super().__init__(error_response, operation_name)
        self.line = line
        self.args = (line,)

    def __str__(self) -> str:
        return self.line


def is_permanent(code: str) -> bool:
    """True for the AWS error codes no retry can fix (see the module docstring)."""
    return code in PERMANENT


def permanent_error_line(*, service: str, operation: str, code: str, message: str, params: dict[str, Any],
                         endpoint: str, conn_id: str | None) -> str:
    """The one line about a permanent error: the call, the resource, where, AWS's reason and the fix."""
    resource = ", ".join(f"{name} {params[name]!r}" for name in _RESOURCE_MEMBERS if params.get(name))
    connection = f"connection {conn_id!r}" if conn_id else "the default AWS connection"
    if code in MISSING_BUCKET:
        bucket = params.get("Bucket") or "?"
        fix = (f"create bucket {bucket!r} or point the task at one that exists (the bucket param or Variable "
               "airsage_bucket)")
        what = f"bucket {bucket!r} does not exist"
    elif code in ACCESS_DENIED:
        fix = (f"grant the identity of {connection} {service}:{operation}"
               f"{' on ' + resource if resource else ''} (docs/aws/airflow-orchestrator-policy.json)")
        what = "access denied"
    elif code in BAD_CREDENTIALS:
        fix = f"fix the credentials of {connection} (or its role) for this endpoint"
        what = "the credentials were not accepted"
    elif code in NOT_FOUND:
        fix = ("check the name and the region, or create it first (upsert_pipeline creates the pipeline)"
               if resource else "check the name and the region")
        what = f"{resource or 'the resource'} does not exist"
    else:
        fix = "correct the request as AWS says; retrying the same request cannot succeed"
        what = "AWS refused the request as invalid"
    reason = " ".join(str(message or code).split())
    subject = f" ({resource})" if resource and code not in NOT_FOUND else ""
    return (f"AWS {service} {operation}{subject} at {endpoint}: {what} ({code}: {reason}); {fix}. "
            "Not retried: a permanent error")


def classify_errors(client, conn_id: str | None = None):
    """Make ``client`` raise :class:`PermanentAwsError` for permanent errors (idempotent); returns the client."""
    events = client.meta.events
    service = client.meta.service_model.service_id.hyphenize()
    endpoint = client.meta.endpoint_url

    def remember(params: dict | None = None, context: dict | None = None, **_) -> None:
        if context is not None and isinstance(params, dict):
            context[_PARAMS] = dict(params)

    def check(http_response=None, parsed=None, model=None, context=None, **_) -> None:
        if http_response is None or http_response.status_code < 300 or not isinstance(parsed, dict):
            return
        error = parsed.get("Error") or {}
        code = str(error.get("Code") or "")
        if not is_permanent(code):
            return
        line = permanent_error_line(service=service, operation=model.name, code=code,
                                    message=error.get("Message") or "", params=(context or {}).get(_PARAMS) or {},
                                    endpoint=endpoint, conn_id=conn_id)
        raise PermanentAwsError(parsed, model.name, line)

    events.register("before-parameter-build", remember, unique_id="airsage-aws-errors-params")
    events.register("after-call", check, unique_id="airsage-aws-errors-check")
    return client
