"""Send status updates with the official Labelbox SDK to the Labelbox stand-in.

tests/labelbox_sdk.rs runs this script and compares what the stand-in recorded
with what trainhook's client sends. The script prints one JSON object on
stdout with the outcome of every case and exits 0 only when every case went
as expected.

Before it imports the SDK, the script blocks every connection and name lookup
that is not for a loopback address, so neither the SDK nor a mistake in this
script can reach api.labelbox.com or any other host.
"""

import argparse
import ipaddress
import json
import socket
import sys
import traceback

# Lookups and connections that the guard blocked, reported in the summary.
BLOCKED_ATTEMPTS = []


def _is_loopback(host):
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if host is None:
        return True
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def _install_loopback_guard():
    """Make every non-loopback lookup or connection raise OSError."""
    original_getaddrinfo = socket.getaddrinfo
    original_connect = socket.socket.connect
    original_connect_ex = socket.socket.connect_ex

    def guarded_getaddrinfo(host, *args, **kwargs):
        if not _is_loopback(host):
            BLOCKED_ATTEMPTS.append(f"lookup of {host!r}")
            raise OSError(f"blocked lookup of non-loopback host {host!r}")
        return original_getaddrinfo(host, *args, **kwargs)

    def check_address(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            if not _is_loopback(address[0]):
                BLOCKED_ATTEMPTS.append(f"connection to {address!r}")
                raise OSError(f"blocked connection to non-loopback address {address!r}")

    def guarded_connect(sock, address):
        check_address(sock, address)
        return original_connect(sock, address)

    def guarded_connect_ex(sock, address):
        check_address(sock, address)
        return original_connect_ex(sock, address)

    socket.getaddrinfo = guarded_getaddrinfo
    socket.socket.connect = guarded_connect
    socket.socket.connect_ex = guarded_connect_ex


_install_loopback_guard()

import labelbox  # noqa: E402  (imported after the guard on purpose)
import lbox.exceptions  # noqa: E402
from labelbox import ModelRun  # noqa: E402

# The status mutation exactly as ModelRun.update_status sends it in SDK 7.17.0,
# for the case that update_status itself cannot send (an unknown status).
STATUS_MUTATION = """mutation setPipelineStatusPyApi($modelRunId: ID!, $data: UpdateTrainingPipelineInput!){
                updateTrainingPipeline(modelRun: {id : $modelRunId}, data: $data){status}
            }
        """


def make_client(endpoint, api_key):
    """Create an SDK client whose every URL points at the stand-in.

    ModelRun.update_status is marked @experimental in the SDK, so it raises
    RuntimeError unless the client enables experimental features.
    """
    base = endpoint.rsplit("/graphql", 1)[0]
    return labelbox.Client(
        api_key=api_key,
        endpoint=endpoint,
        enable_experimental=True,
        app_url=base,
        rest_endpoint=f"{base}/api/v1",
    )


def run_case(name, action, expected_exception=None):
    """Run one case and return its outcome as a JSON-ready dict."""
    outcome = {"name": name, "ok": False, "error": None}
    try:
        action()
    except Exception as error:  # noqa: BLE001  (every outcome is reported)
        outcome["error"] = f"{type(error).__module__}.{type(error).__name__}: {error}"
        if expected_exception is not None and isinstance(error, expected_exception):
            outcome["ok"] = True
        elif expected_exception is None:
            outcome["traceback"] = traceback.format_exc()
        return outcome

    if expected_exception is None:
        outcome["ok"] = True
    else:
        outcome["error"] = f"expected {expected_exception.__name__}, but the call succeeded"
    return outcome


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--endpoint", required=True, help="the stand-in's /graphql URL on 127.0.0.1")
    parser.add_argument("--api-key", required=True, help="the API key the stand-in accepts")
    parser.add_argument("--model-run-id", required=True, help="model run for the three accepted updates")
    args = parser.parse_args()

    host = args.endpoint.split("//", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0]
    if not _is_loopback(host.strip("[]")):
        parser.error(f"--endpoint must be on a loopback address, got {args.endpoint}")

    client = make_client(args.endpoint, args.api_key)
    model_run = None

    def get_model_run():
        nonlocal model_run
        model_run = client.get_model_run(args.model_run_id)
        if not isinstance(model_run, ModelRun) or model_run.uid != args.model_run_id:
            raise AssertionError(f"get_model_run returned {model_run!r}")

    cases = [run_case("get_model_run", get_model_run)]
    if model_run is not None:
        cases += [
            run_case("training_model", lambda: model_run.update_status("TRAINING_MODEL")),
            run_case(
                "complete_with_metadata",
                lambda: model_run.update_status(
                    ModelRun.Status.COMPLETE, metadata={"weights": "s3://b/w.pt"}
                ),
            ),
            run_case(
                "failed_with_error_message",
                lambda: model_run.update_status("FAILED", error_message="training crashed: out of memory"),
            ),
        ]

    # Rejections, each for its own model run so the test can tell them apart.
    wrong_key_client = make_client(args.endpoint, args.api_key + "-wrong")
    error_cases = [
        run_case(
            "wrong_api_key",
            lambda: wrong_key_client.get_model_run("sdk-wrong-key-run"),
            lbox.exceptions.AuthenticationError,
        ),
        run_case(
            "unknown_status",
            lambda: client.execute(
                STATUS_MUTATION,
                {"modelRunId": "sdk-unknown-status-run", "data": {"status": "DONE"}},
                experimental=True,
            ),
            lbox.exceptions.InvalidQueryError,
        ),
        run_case(
            "long_error_message",
            lambda: client.get_model_run("sdk-long-message-run").update_status(
                "FAILED", error_message="x" * 256
            ),
            lbox.exceptions.InvalidQueryError,
        ),
    ]

    summary = {
        "sdkVersion": labelbox.__version__,
        "blockedAttempts": BLOCKED_ATTEMPTS,
        "cases": cases,
        "errorCases": error_cases,
    }
    print(json.dumps(summary, indent=2))

    all_ok = all(case["ok"] for case in cases + error_cases) and len(cases) == 4
    return 0 if all_ok and not BLOCKED_ATTEMPTS else 1


if __name__ == "__main__":
    sys.exit(main())
