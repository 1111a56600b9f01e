"""``python -m sm_pipeline serve``: the emulated SageMaker service and S3 on one loopback endpoint.

Requests whose ``X-Amz-Target`` is ``SageMaker.<Action>`` (or that are signed for ``sagemaker``) are
answered by ``api.SageMakerApi``; the read-only IAM and STS calls the SageMaker SDK makes to validate a role
(GetRole, SimulatePrincipalPolicy, GetCallerIdentity) by ``iam``; every other request goes to moto's server
app, whose S3 is kept in sync with the object root by ``s3.ObjectRootS3`` (other AWS services moto emulates,
e.g. SNS, answer from memory). The first line on stdout is the endpoint URL; SIGINT/SIGTERM stop the service
cleanly: no new requests, running executions stopped and recorded Stopped, then exit 0.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import signal
import socket
import sys
import threading
import uuid
from pathlib import Path

from sm_pipeline.errors import InvalidInput
from sm_pipeline.locks import FileLock
from sm_pipeline.service import iam
from sm_pipeline.storage import DEFAULT_ROOT

log = logging.getLogger("sm_pipeline.service")

# A liveness probe for compose/healthchecks; '_' cannot start a bucket name, so no S3 path is shadowed.
HEALTH_PATH = "/_airsage/health"
SHUTDOWN_REASON = "the emulated SageMaker service was stopped ({signal}) while this execution was running"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add serve's options to ``parser``."""
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to listen on; 0 (the default) picks a free one")
    parser.add_argument("--root", default=str(DEFAULT_ROOT),
                        help=f"object root and service state: s3://bucket/key is ROOT/bucket/key (default {DEFAULT_ROOT})")
    parser.add_argument("--log-requests", action="store_true", help="log every HTTP request on stderr")


def is_sagemaker_request(environ: dict) -> bool:
    """True for SageMaker API calls: an X-Amz-Target of SageMaker.*, or a SigV4 scope of sagemaker."""
    target = environ.get("HTTP_X_AMZ_TARGET") or ""
    if target.startswith("SageMaker."):
        return True
    auth = environ.get("HTTP_AUTHORIZATION") or ""
    return "/sagemaker/aws4_request" in auth and environ.get("REQUEST_METHOD") == "POST"


class ServiceApp:
    """The WSGI application: SageMaker to the API, everything else to moto (S3 through the object root)."""

    def __init__(self, root: Path, region: str):
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        from sm_pipeline.service.api import SageMakerApi
        from sm_pipeline.service.s3 import ObjectRootS3

        self.api = SageMakerApi(root, region)
        self.s3 = ObjectRootS3(root, region)
        self.moto = DomainDispatcherApplication(create_backend_app)

    def __call__(self, environ: dict, start_response):
        if is_sagemaker_request(environ):
            return self._sagemaker(environ, start_response)
        service = iam.query_service(environ)
        if service is not None:
            body = _read_body(environ)
            form = iam.parse_form(body)
            if iam.answers(service, form):
                status, payload = iam.handle(service, form)
                return _xml_response(start_response, status, payload)
            # Not ours: moto reads the body again.
            environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(body), str(len(body))
            environ.pop("wsgi.input_terminated", None)
        if environ.get("PATH_INFO", "") == HEALTH_PATH:
            return _json_response(start_response, 200, {"status": "ok", "root": str(self.api.root),
                                                         "running_executions": len(self.api.executions.running())})
        if environ.get("PATH_INFO", "").startswith("/moto-api"):
            # moto's reset/state API would wipe S3 behind the object root's back: not served here.
            return _json_response(start_response, 404, {"__type": "NotFound", "message": "moto's /moto-api is not "
                                                        "served by the emulated SageMaker service"})
        app = self.moto.get_application(environ)
        if app is self.moto.app_instances.get("s3"):
            return self.s3.call(app, environ, start_response)
        return app(environ, start_response)

    def _sagemaker(self, environ: dict, start_response):
        status, payload = self.api.handle(environ.get("HTTP_X_AMZ_TARGET"), _read_body(environ),
                                          caller=iam.caller_context(environ))
        return _json_response(start_response, status, payload)


def _read_body(environ: dict) -> bytes:
    if environ.get("wsgi.input_terminated"):  # a chunked body: the server ends the stream for us
        return environ["wsgi.input"].read()
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    return environ["wsgi.input"].read(length) if length > 0 else b""


def _xml_response(start_response, status: int, data: bytes):
    start_response(f"{status} {_REASONS.get(status, 'Error')}", [
        ("Content-Type", "text/xml"), ("Content-Length", str(len(data))), ("x-amzn-RequestId", str(uuid.uuid4()))])
    return [data]


_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 500: "Internal Server Error", 501: "Not Implemented",
            503: "Service Unavailable"}


def _json_response(start_response, status: int, payload: dict):
    data = json.dumps(payload).encode()
    headers = [("Content-Type", "application/x-amz-json-1.1"), ("Content-Length", str(len(data))),
               ("x-amzn-RequestId", str(uuid.uuid4()))]
    if status >= 400:
        headers.append(("x-amzn-ErrorType", payload.get("__type", "")))
    start_response(f"{status} {_REASONS.get(status, 'Error')}", headers)
    return [data]


def _lock_root(root: Path) -> FileLock:
    """Hold ``<root>/.airsage/service/service.lock``: one service per object root."""
    from sm_pipeline.service.state import service_dir

    lock = FileLock(service_dir(root) / "service.lock")
    if not lock.try_acquire():
        raise InvalidInput(f"--root {root}: another emulated SageMaker service is already serving this object root")
    return lock


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def endpoint_url(host: str, port: int) -> str:
    """The URL clients use: a wildcard address is reached through loopback."""
    if host in ("0.0.0.0", ""):  # noqa: S104 - naming the wildcard, not binding to it
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def serve(args: argparse.Namespace) -> int:
    """Run the service until SIGINT/SIGTERM; returns the exit code."""
    from sm_pipeline.arns import default_region

    # Everything a user can get wrong is checked before the heavy imports (moto, werkzeug).
    if not 0 <= args.port <= 65535:
        raise InvalidInput(f"--port {args.port}: must be between 0 and 65535")
    root = Path(args.root).resolve()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidInput(f"--root {args.root}: cannot create the object root: {exc.strerror}") from None
    lock = _lock_root(root)
    try:
        # Bound here rather than by werkzeug, which prints a bare OS error and exits on its own.
        listener = socket.create_server((args.host, args.port), family=_family(args.host), backlog=128)
    except (OSError, OverflowError) as exc:
        lock.release()
        reason = getattr(exc, "strerror", None) or str(exc)
        raise InvalidInput(f"--host {args.host} --port {args.port}: cannot listen there: {reason}") from None

    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from werkzeug.serving import make_server

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.INFO if args.log_requests else logging.WARNING)
    region = default_region()
    app = ServiceApp(root, region)
    for arn in app.api.recover():
        log.warning("execution %s was left running by a previous service: recorded Stopped", arn)
    server = make_server(args.host, listener.getsockname()[1], app, threaded=True,
                         request_handler=MotoRequestHandler, fd=listener.fileno())
    stop = threading.Event()
    received: list[str] = []

    def on_signal(signum, frame):
        received.append(signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    worker = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="http", daemon=True)
    worker.start()
    url = endpoint_url(args.host, listener.getsockname()[1])
    print(url, flush=True)
    log.info("emulated SageMaker + S3 at %s, object root %s, region %s", url, root, region)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        log.info("stopping (%s)", received[0] if received else "exit")
        server.shutdown()
        app.api.executions.shutdown(SHUTDOWN_REASON.format(signal=received[0] if received else "exit"))
        server.server_close()
        listener.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        lock.release()
    log.info("stopped")
    return 0
