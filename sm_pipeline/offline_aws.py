"""An AWS-less window for the SageMaker SDK: no credential lookup, no metadata service, no config files.

Building a definition needs no AWS identity, but the SDK creates boto3 clients anyway: at import
time (``sagemaker.ai_registry.air_hub.AIRHub`` calls ``boto3.client("sagemaker")`` in its class
body), in every ``ProcessingStep``/``TransformStep`` constructor (``LocalSagemakerClient()`` builds a
``LocalSession`` on a fresh ``boto3.Session()`` just to read a method name), and in the session we
hand it. Each client creation runs botocore's credential chain, and with no credentials configured
the chain ends at the EC2 instance-metadata service (169.254.169.254) -- on an EC2 host the
"offline" build would fetch the instance role's credentials; elsewhere it waits on a dead address.
The chain also reads ``~/.aws`` (where a ``credential_process`` or an SSO profile can start a
program or a network call).

:func:`offline_aws` is the one place that prevents it. Inside the block every botocore session that
resolves credentials finds none and looks nowhere: the credential and profile variables are hidden,
the shared config/credentials files are ``/dev/null``, the metadata service is disabled, and boto3's
module-level default session is a fresh one. On exit every variable and the default session are put
back exactly, so a process that goes on to call AWS (the ``upsert_pipeline`` task of the SageMaker
backend on an instance role) resolves its credentials through the normal chain. Clients the SDK
created inside the block keep their credential-less sessions; airsage never sends a request with
them (a request would fail locally with ``NoCredentialsError``, before any connection).

The window is process-wide for its few seconds (environment variables are): it holds a lock, so
builds in several threads take turns, and it is re-entrant. Do not run AWS calls in other threads
of the same process while a definition is being built.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator, Mapping

# Every variable through which botocore's chain finds credentials or a profile (which could name
# an SSO login, a credential_process or a role to assume).
HIDDEN_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
)

# What the chain sees instead: no files, no instance metadata.
OFFLINE_VARIABLES = {
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}

_lock = threading.RLock()
_depth = 0


@contextlib.contextmanager
def offline_aws(extra: Mapping[str, str] | None = None) -> Iterator[None]:
    """Within the block, boto3/botocore sessions resolve no credentials and touch no network.

    ``extra`` variables are set for the block too (and restored after), e.g. the region the
    SDK's import-time clients need once the config file is hidden.
    """
    import boto3

    global _depth
    with _lock:
        _depth += 1
        if _depth > 1:  # the outermost block owns the state
            try:
                yield
            finally:
                _depth -= 1
            return
        names = {*HIDDEN_VARIABLES, *OFFLINE_VARIABLES, *(extra or {})}
        saved_env = {name: os.environ.get(name) for name in names}
        saved_default_session = boto3.DEFAULT_SESSION
        try:
            for name in HIDDEN_VARIABLES:
                os.environ.pop(name, None)
            os.environ.update(OFFLINE_VARIABLES)
            os.environ.update(extra or {})
            # A default session created (or first asked for credentials) in here would keep
            # the offline chain for the rest of the process; give the SDK a throwaway one.
            boto3.DEFAULT_SESSION = None
            yield
        finally:
            boto3.DEFAULT_SESSION = saved_default_session
            for name, value in saved_env.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            _depth -= 1
